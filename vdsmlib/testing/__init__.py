"""Testing helpers for consumers of configured DSM images: a testcontainers-python container
(:class:`DsmContainer`, ready when DSM accepts a login) and a pytest plugin
(:mod:`vdsmlib.testing.plugin`: option ``--dsm-image``, fixtures ``dsm`` and ``fresh_dsm``)."""

from vdsmlib.testing.container import DsmContainer, DsmLoginWaitStrategy, DsmNotReady

__all__ = ["DsmContainer", "DsmLoginWaitStrategy", "DsmNotReady"]
