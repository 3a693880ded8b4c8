"""pytest plugin: a configured DSM for the tests of software that talks to a Synology NAS.

Installed with pytest-vdsm, the light distribution of this repository (``pip install
./pytest-vdsm``), or with vdsmlib, the whole builder (entry point ``pytest11`` in both), so a
consumer's test file only asks for it::

    def test_nfs_is_on(dsm):
        assert dsm.client.nfs_get()["enable_nfs"] is True

    pytest --dsm-image ghcr.io/vdsm-ci/vdsm-configured:sim-tcg    # or VDSM_DSM_IMAGE=...

Fixtures:

- ``dsm`` (session): one container of the image for the whole session, logged in.
- ``fresh_dsm`` (function): a container of its own for each test. A configured image restores
  a QEMU snapshot, so every test starts from the same configured DSM in seconds.

Both yield a :class:`Dsm`: ``url``, ``https_url``, ``user``, ``password``, ``client`` (a
logged-in :class:`~vdsmlib.webapi.client.DsmSession`) and ``container``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from vdsmlib.testing.container import DsmContainer
from vdsmlib.webapi.client import DsmClient, DsmSession

__all__ = ["Dsm"]

log = logging.getLogger(__name__)

IMAGE_ENV = "VDSM_DSM_IMAGE"


@dataclass
class Dsm:
    """A running, configured DSM and a logged-in Web API session to it."""

    url: str
    https_url: str | None
    user: str
    password: str
    client: DsmSession
    container: DsmContainer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vdsm-ci", "a configured Synology DSM (vdsm-ci images)")
    group.addoption(
        "--dsm-image",
        default=os.environ.get(IMAGE_ENV),
        help=f"configured DSM image for the dsm fixtures (default: ${IMAGE_ENV})",
    )
    group.addoption("--dsm-user", default=None, help="account (default: the image's own)")
    group.addoption("--dsm-password", default=None, help="password (default: the image's own)")
    group.addoption(
        "--dsm-bind",
        default="127.0.0.1",
        help="address to publish DSM's ports on (default 127.0.0.1; 0.0.0.0 when the tests "
        "run in a container beside the Docker engine)",
    )
    group.addoption(
        "--dsm-startup-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for a login (default 300)",
    )


@dataclass(frozen=True)
class _Options:
    image: str
    user: str | None
    password: str | None
    startup_timeout: float
    bind: str


def _options(config: pytest.Config) -> _Options:
    image = config.getoption("--dsm-image")
    if not image:
        pytest.fail(
            f"no DSM image: pass --dsm-image IMAGE or set {IMAGE_ENV} "
            "(build one with `make build`)",
            pytrace=False,
        )
    return _Options(
        str(image),
        config.getoption("--dsm-user"),
        config.getoption("--dsm-password"),
        float(config.getoption("--dsm-startup-timeout")),
        str(config.getoption("--dsm-bind")),
    )


def _running(options: _Options) -> Iterator[Dsm]:
    container = DsmContainer(
        options.image,
        user=options.user,
        password=options.password,
        startup_timeout=options.startup_timeout,
        bind=options.bind,
    )
    with container:
        user, password = container.credentials()
        with (
            DsmClient(container.url, timeout=30) as client,
            client.login(user, password) as session,
        ):
            yield Dsm(
                url=container.url,
                https_url=container.https_url,
                user=user,
                password=password,
                client=session,
                container=container,
            )


@pytest.fixture(scope="session")
def dsm(pytestconfig: pytest.Config) -> Iterator[Dsm]:
    """One configured DSM for the whole session."""
    yield from _running(_options(pytestconfig))


@pytest.fixture
def fresh_dsm(pytestconfig: pytest.Config) -> Iterator[Dsm]:
    """A configured DSM of this test's own (restored from the image's snapshot)."""
    yield from _running(_options(pytestconfig))
