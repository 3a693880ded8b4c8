"""Testing helpers for consumers of configured DSM images: a testcontainers-python container
(:class:`DsmContainer`, ready when DSM accepts a login) and a pytest plugin
(:mod:`vdsmlib.testing.plugin`: option ``--dsm-image``, fixtures ``dsm`` and ``fresh_dsm``).

The light distribution pytest-vdsm (``pytest-vdsm/``) ships this package and what it imports,
nothing more: an import of a heavy part of vdsmlib (the builder, the notebooks, pydantic
params) here breaks it, and tests/package/test_pytest_vdsm_files.py says so."""

from vdsmlib.testing.container import DsmContainer, DsmLoginWaitStrategy, DsmNotReady

__all__ = ["DsmContainer", "DsmLoginWaitStrategy", "DsmNotReady"]
