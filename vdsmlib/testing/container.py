"""A configured DSM image as a testcontainers-python container, with a login wait strategy.

::

    from vdsmlib.testing import DsmContainer

    with DsmContainer("ghcr.io/vdsm-ci/vdsm-configured:sim-tcg") as dsm:
        with dsm.client() as client, client.login(dsm.user, dsm.password) as session:
            print(session.nfs_get())

The container gets what virtual-dsm's NAT networking needs (``/dev/net/tun`` and
``NET_ADMIN``, never ``--privileged``), plus ``/dev/kvm`` for an image whose snapshot was taken
under KVM (label ``vdsm-ci.accelerator``). Ports are published on 127.0.0.1 only (a DSM with
documented credentials is not for the network); ``bind="0.0.0.0"`` publishes them on every
address, for tests that run in a container beside the Docker engine. The credentials are the
image's own (its health check logs in with them), unless ``user``/``password`` are given.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import time
import urllib.parse
from typing import Any

import docker.errors
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

from vdsmlib.docker.route import container_address, guest_route
from vdsmlib.errors import VdsmError
from vdsmlib.readiness import MAX_INTERVAL, ReadinessAborted, ReadinessTimeout
from vdsmlib.webapi.client import DsmClient
from vdsmlib.webapi.errors import WebApiError
from vdsmlib.webapi.readiness import DsmLoginReady

__all__ = ["DsmContainer", "DsmLoginWaitStrategy", "DsmNotReady"]

log = logging.getLogger(__name__)

HTTP_PORT = 5000
HTTPS_PORT = 5001
HEALTH_CONF = "/etc/vdsm-ci/health.conf"
_LOG_TAIL = 30


class DsmNotReady(VdsmError):
    """The DSM in the container did not accept a login in time (message has the log tail), its
    container exited first, or DSM refused the account (wrong password, 2FA, ...: at once)."""


class DsmLoginWaitStrategy(WaitStrategy):
    """Ready when DSM's Web API accepts a login of the configured account.

    testcontainers' interface (``with_startup_timeout``, ``with_poll_interval``,
    ``with_transient_exceptions``) over the library's one wait loop: the wait itself is
    :class:`vdsmlib.webapi.readiness.DsmLoginReady` (:meth:`readiness`). An HTTP answer on port
    5000 proves nothing (a booting virtual-dsm serves a "please wait" page), and neither does
    ``SYNO.API.Info`` alone; a login does. Connection errors while the VM restores are
    transient; a login error in :data:`~vdsmlib.webapi.readiness.FATAL_LOGIN_CODES` (wrong
    password, disabled account, 2FA, ...) fails at once, and so does a container that exited.
    """

    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        super().__init__()
        self.user = user
        self.password = password
        self.with_startup_timeout(300).with_poll_interval(0.5)

    def readiness(self, url: str, user: str, password: str) -> DsmLoginReady:
        """The wait object this strategy runs: a login of ``user`` at ``url``, with this
        strategy's timeout, poll interval and transient exceptions."""
        ready = DsmLoginReady(
            url,
            user,
            password,
            timeout=max(self._startup_timeout, 0.1),
            interval=min(max(self._poll_interval, 0.01), MAX_INTERVAL),
            request_timeout=10.0,
        )
        extra = tuple(e for e in self._transient_exceptions if e not in ready.retryable)
        ready.retryable = (*ready.retryable, *extra)
        return ready

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        assert isinstance(container, DsmContainer)
        user, password = container.credentials(self.user, self.password)
        url = container.url
        ready = self.readiness(url, user, password)

        def alive() -> str | None:
            container.reload()
            if container.status in ("created", "running"):
                return None
            return f"the DSM container exited ({container.status}) before DSM was ready"

        def log_tail() -> str:
            return f"last log lines:\n{container.log_tail()}"

        started = time.monotonic()
        try:
            _wait_blocking(ready, describe=log_tail, alive=alive)
        except WebApiError as err:  # a code in FATAL_LOGIN_CODES: waiting will not cure it
            raise DsmNotReady(
                f"DSM at {url} refused the login of {user!r}: {err}; "
                "pass the image's credentials (--dsm-user/--dsm-password)"
            ) from err
        except ReadinessAborted as err:
            raise DsmNotReady(f"{err.reason}; last log lines:\n{container.log_tail()}") from err
        except ReadinessTimeout as err:
            last = err.last_error or "no answer yet"
            raise DsmNotReady(
                f"DSM at {url} did not accept a login of {user!r} within {ready.timeout:.0f} s "
                f"(last: {last}); last log lines:\n{container.log_tail()}"
            ) from err
        log.info("DSM at %s logged in after %.1f s", url, time.monotonic() - started)


def _wait_blocking(ready: DsmLoginReady, **kwargs: Any) -> None:
    """``ready.wait(**kwargs)``, also from a thread that runs an event loop (async tests, a
    Jupyter cell): there the wait runs in a thread of its own, and this one blocks on it, as
    testcontainers' synchronous ``start()`` does anyway."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        ready.wait(**kwargs)
        return
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dsm-login") as pool:
        pool.submit(ready.wait, **kwargs).result()


def _disable_ryuk_if_unavailable(container: DockerContainer) -> None:
    """Ryuk (testcontainers' reaper) is an image of its own; without it, do not try to pull it.

    DsmContainer removes itself when its ``with`` block ends; Ryuk only adds a safety net for
    a killed process. Where its image is not present (no registry), it is turned off with a log
    line, unless ``TESTCONTAINERS_RYUK_DISABLED`` says what to do.
    """
    from testcontainers.core.config import testcontainers_config as tc

    if "TESTCONTAINERS_RYUK_DISABLED" in os.environ or tc.ryuk_disabled:
        return
    try:
        container.get_docker_client().client.images.get(tc.ryuk_image)
    except docker.errors.DockerException:
        log.info("%s is not available here: running without testcontainers' reaper", tc.ryuk_image)
        tc.ryuk_disabled = True


class DsmContainer(DockerContainer):
    """A configured DSM image, started with the run options it needs, ready when it logs in."""

    def __init__(
        self,
        image: str,
        *,
        user: str | None = None,
        password: str | None = None,
        startup_timeout: float = 300,
        bind: str = "127.0.0.1",
        **kwargs: Any,
    ) -> None:
        super().__init__(image, **kwargs)
        self.bind = bind
        self._user = user
        self._password = password
        labels = self._image_labels()
        devices = ["/dev/net/tun"]
        if labels.get("vdsm-ci.accelerator") == "kvm":
            devices.append("/dev/kvm")
        self.with_kwargs(devices=devices, cap_add=["NET_ADMIN"])
        # (address,): docker-py publishes on that address, on a port Docker picks.
        self.ports[str(HTTP_PORT)] = (bind,)  # type: ignore[assignment]
        if self._exposes(HTTPS_PORT):
            self.ports[str(HTTPS_PORT)] = (bind,)  # type: ignore[assignment]
        self.waiting_for(
            DsmLoginWaitStrategy(user, password).with_startup_timeout(int(startup_timeout))
        )

    def start(self) -> DsmContainer:
        _disable_ryuk_if_unavailable(self)
        super().start()
        return self

    # -- image facts -----------------------------------------------------------------------

    def _image_attrs(self) -> dict[str, Any]:
        try:
            image = self.get_docker_client().client.images.get(self.image)
        except Exception as err:  # docker.errors.ImageNotFound / APIError
            raise VdsmError(
                f"image {self.image} is not available to the Docker engine ({err}); "
                "pull it or build it with `make build`"
            ) from err
        return dict(image.attrs)

    def _image_labels(self) -> dict[str, str]:
        return dict(self._image_attrs().get("Config", {}).get("Labels") or {})

    def _exposes(self, port: int) -> bool:
        exposed = self._image_attrs().get("Config", {}).get("ExposedPorts") or {}
        return f"{port}/tcp" in exposed

    # -- where and who -----------------------------------------------------------------------

    def _host(self) -> str:
        # Published on loopback: reachable there. Published on every address (``bind``
        # 0.0.0.0, e.g. tests running in a container beside the engine): where
        # testcontainers says the engine's ports are.
        if self.bind != "0.0.0.0":
            return self.bind
        host = self.get_container_host_ip()
        return "127.0.0.1" if host == "localhost" else host

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<published 5000>``."""
        return f"http://{self._host()}:{self.get_exposed_port(HTTP_PORT)}"

    @property
    def https_url(self) -> str | None:
        """``https://127.0.0.1:<published 5001>`` (self-signed), or None if not exposed."""
        if str(HTTPS_PORT) not in self.ports:
            return None
        return f"https://{self._host()}:{self.get_exposed_port(HTTPS_PORT)}"

    def credentials(self, user: str | None = None, password: str | None = None) -> tuple[str, str]:
        """The account to log in with: the given one, else the one the image's health check uses."""
        user = user or self._user
        password = password or self._password
        if user and password:
            return user, password
        conf = self._health_conf()
        user = user or conf.get("HEALTH_USER") or self._image_labels().get("vdsm-ci.admin-user")
        password = password or conf.get("HEALTH_PASSWORD")
        if not user or not password:
            raise DsmNotReady(
                f"{self.image} does not say which account to log in with (no {HEALTH_CONF}); "
                "pass --dsm-user and --dsm-password"
            )
        return user, password

    def _health_conf(self) -> dict[str, str]:
        result = self.get_wrapped_container().exec_run(["cat", HEALTH_CONF])
        if result.exit_code != 0:
            return {}
        conf: dict[str, str] = {}
        for line in result.output.decode(errors="replace").splitlines():
            name, sep, value = line.partition("=")
            if sep:
                conf[name.strip()] = urllib.parse.unquote(value.strip())
        return conf

    @property
    def user(self) -> str:
        return self.credentials()[0]

    @property
    def password(self) -> str:
        return self.credentials()[1]

    def guest_route(self) -> contextlib.AbstractContextManager[None]:
        """Route DSM's own address through this container while the block runs.

        For iSCSI initiators that log in where discovery points (the advertised portal is DSM's
        own address behind the NAT): see :mod:`vdsmlib.docker.route`.
        """
        address = self._health_conf().get("GUEST_ADDRESS")
        if not address:
            raise DsmNotReady(f"{self.image} does not say DSM's own address (no {HEALTH_CONF})")
        wrapped = self.get_wrapped_container()
        return guest_route(address, container_address(wrapped), helper=wrapped)

    def client(self, *, timeout: float = 30.0) -> DsmClient:
        """A Web API client of this DSM (log in with ``client.login(self.user, self.password)``)."""
        return DsmClient(self.url, timeout=timeout)

    def log_tail(self, lines: int = _LOG_TAIL) -> str:
        try:
            out = self.get_wrapped_container().logs(tail=lines)
        except Exception as err:  # the container may be gone already
            return f"(no logs: {err})"
        return bytes(out).decode(errors="replace").rstrip()
