"""A virtual-dsm compatible container as a context manager that always cleans up.

Example::

    with VmContainer.start(client, "vdsm-ci/checkpoint:sim-start-ready-0123abcd",
                           env={"KVM": "N"}, labels=owner_labels("stage-container", run_id)) as vm:
        url = vm.url(5000)           # http://127.0.0.1:<free port>
        ...
        code = vm.wait_exit(60)     # in async code: await vm.wait_exit_async(60)
        image = vm.commit("vdsm-ci/checkpoint", "x", labels={...})

Published ports are bound to 127.0.0.1 on ports Docker picks, so a busy 5000 on the host never
breaks a build. ``close()`` removes the container (unless ``keep``) and may be called any number
of times; a failed start removes what was created before raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from docker.models.images import Image

from vdsmlib.docker.engine import DockerError
from vdsmlib.readiness import NotReady, ReadinessTimeout, wait_for, wait_for_sync
from vdsmlib.resource import Closeable

__all__ = ["ContainerExited", "VmContainer", "run_detached"]

log = logging.getLogger(__name__)

_POLL = 0.25


def run_detached(client: docker.DockerClient, image: str, **kwargs: Any) -> Container:
    """``docker run -d``, except that a container whose start fails (a busy port, a missing
    device) is removed instead of being left behind in the Created state."""
    container = client.containers.create(image, **kwargs)
    try:
        container.start()
    except BaseException:
        with contextlib.suppress(DockerException):
            container.remove(force=True, v=True)
        raise
    return container


class ContainerExited(DockerError):
    """The container stopped while something was still expected of it."""


class VmContainer(Closeable):
    """A running container of a virtual-dsm compatible image."""

    def __init__(self, client: docker.DockerClient, container: Container, *, keep: bool = False):
        self.client = client
        self._container = container
        self.keep = keep
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        client: docker.DockerClient,
        image: str,
        *,
        env: Mapping[str, str] | None = None,
        ports: Iterable[int] = (5000,),
        labels: Mapping[str, str] | None = None,
        binds: Mapping[str, str] | None = None,
        devices: Iterable[str] = (),
        cap_add: Iterable[str] = (),
        name: str | None = None,
        keep: bool = False,
        network: str | None = None,
    ) -> VmContainer:
        """Create and start a detached container; ports go to 127.0.0.1 on free host ports."""
        # Bind mounts as HostConfig.Mounts, not docker-py's ``volumes`` (which also declares
        # each target in Config.Volumes): `docker commit` would carry that declaration into the
        # checkpoint image as a VOLUME, and restoring it then fails over the mountpoint file
        # (/boot.pat: "cannot mount volume over existing file").
        mounts = [
            docker.types.Mount(target=dst, source=src, type="bind")
            for src, dst in (binds or {}).items()
        ]
        try:
            container = run_detached(
                client,
                image,
                environment=dict(env or {}),
                ports={f"{p}/tcp": ("127.0.0.1", None) for p in ports},
                labels=dict(labels or {}),
                mounts=mounts,
                devices=[f"{d}:{d}" for d in devices],
                cap_add=list(cap_add) or None,
                name=name,
                stop_signal="SIGTERM",
                network=network,
            )
        except DockerException as err:
            raise DockerError(f"could not start a container of {image}: {_one_line(err)}") from err
        vm = cls(client, container, keep=keep)
        try:
            vm._container.reload()
        except BaseException:
            vm.close()
            raise
        log.info("started container %s from %s", vm.short_id, image)
        return vm

    @classmethod
    def attach(cls, client: docker.DockerClient, container_id: str) -> VmContainer:
        """A handle on an existing container (for example one a previous notebook started)."""
        try:
            return cls(client, client.containers.get(container_id), keep=True)
        except NotFound as err:
            raise ContainerExited(f"container {container_id[:12]} no longer exists") from err

    def close(self) -> None:
        """Remove the container unless ``keep`` is set. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.keep:
            log.info("leaving container %s running (keep)", self.short_id)
            return
        self.remove()

    def remove(self) -> None:
        """Force-remove the container (and its anonymous volumes)."""
        try:
            self._container.remove(force=True, v=True)
            log.info("removed container %s", self.short_id)
        except NotFound:
            pass
        except DockerException as err:
            raise DockerError(f"could not remove container {self.short_id}: {err}") from err

    # -- facts -----------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return str(self._container.id)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def host_port(self, port: int = 5000) -> int:
        """The loopback port Docker chose for the container's ``port``."""
        self._container.reload()
        bindings = (self._container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp")
        if not bindings:
            raise DockerError(f"container {self.short_id} publishes no port {port}")
        return int(bindings[0]["HostPort"])

    def url(self, port: int = 5000) -> str:
        return f"http://127.0.0.1:{self.host_port(port)}"

    def status(self) -> str:
        try:
            self._container.reload()
        except NotFound:
            return "removed"
        return str(self._container.status)

    def exit_code(self) -> int | None:
        self._container.reload()
        state = self._container.attrs["State"]
        return None if state.get("Running") else int(state.get("ExitCode", -1))

    def logs_tail(self, lines: int = 30) -> str:
        try:
            raw = self._container.logs(tail=lines)
        except DockerException:
            return "(no logs: container gone)"
        return bytes(raw).decode(errors="replace").rstrip()

    def died(self) -> str | None:
        """Why the container is no longer running, or None while it runs (a readiness check)."""
        state = self.status()
        if state in ("running", "created", "restarting"):
            return None
        code = "?" if state == "removed" else self.exit_code()
        return (
            f"container {self.short_id} {state} (exit code {code}); last log lines:\n"
            + self.logs_tail(15)
        )

    # -- actions ---------------------------------------------------------------------------------

    def exec(self, *cmd: str) -> str:
        """Run a command inside the container; raises on a non-zero exit."""
        try:
            result = self._container.exec_run(list(cmd))
        except DockerException as err:
            raise DockerError(f"exec {' '.join(cmd)} in {self.short_id}: {err}") from err
        out = bytes(result.output or b"").decode(errors="replace")
        if result.exit_code != 0:
            raise DockerError(
                f"`{' '.join(cmd)}` in container {self.short_id} exited {result.exit_code}: "
                f"{out.strip()[-400:]}"
            )
        return out

    async def wait_exit_async(self, timeout: float) -> int:
        """Wait for the container to stop by itself; returns its exit code."""

        async def stopped(budget: float) -> int:
            code = await asyncio.to_thread(self.exit_code)
            if code is None:
                raise NotReady(f"container {self.short_id} still runs")
            return code

        try:
            return await wait_for(
                stopped, what=f"container {self.short_id} to stop", timeout=timeout, interval=_POLL
            )
        except ReadinessTimeout as err:
            raise DockerError(
                f"container {self.short_id} did not stop within {timeout:.0f} s; last log "
                "lines:\n" + self.logs_tail(15)
            ) from err

    def wait_exit(self, timeout: float) -> int:
        """:meth:`wait_exit_async` for synchronous code (not inside a running event loop)."""
        return wait_for_sync(
            lambda: self.wait_exit_async(timeout), f"container {self.short_id} to stop"
        )

    def stop(self, timeout: int = 30) -> None:
        try:
            self._container.stop(timeout=timeout)
        except NotFound:
            pass
        except DockerException as err:
            raise DockerError(f"could not stop container {self.short_id}: {err}") from err

    def kill_process(self, pattern: str) -> None:
        """SIGKILL the processes whose command line holds ``pattern``, inside the container.

        Fault injection (as an OOM killer or a crash would), through Docker: the processes are
        root's, so a user in the ``docker`` group cannot signal them from the host. Plain sh and
        /proc: the images have no pkill.
        """
        script = (
            'for p in /proc/[0-9]*; do [ "${p#/proc/}" = $$ ] && continue; '
            'case "$(tr "\\0" " " < "$p/cmdline" 2>/dev/null)" in '
            '*"$1"*) kill -9 "${p#/proc/}" 2>/dev/null;; esac; done'
        )
        self._container.exec_run(["sh", "-c", script, "kill", pattern])

    def commit(
        self,
        repository: str,
        tag: str,
        *,
        labels: Mapping[str, str] | None = None,
        changes: Iterable[str] = (),
    ) -> Image:
        """Commit the (stopped) container into ``repository:tag`` with extra labels."""
        all_changes = [*changes, *(f'LABEL "{k}"="{v}"' for k, v in (labels or {}).items())]
        try:
            image = self._container.commit(
                repository=repository, tag=tag, changes=all_changes, pause=True
            )
        except (APIError, DockerException) as err:
            raise DockerError(f"docker commit of {self.short_id} failed: {err}") from err
        log.info("committed %s as %s:%s", self.short_id, repository, tag)
        return image

    def copy_from(self, path: str, dest: Path) -> None:
        """Copy a file or folder out of the container (as a tar stream) into ``dest``."""
        import io
        import tarfile

        stream, _ = self._container.get_archive(path)
        buf = io.BytesIO(b"".join(stream))
        with tarfile.open(fileobj=buf) as tar:
            tar.extractall(dest, filter="data")

    def attrs(self) -> dict[str, Any]:
        try:
            self._container.reload()
        except NotFound as err:
            raise ContainerExited(f"container {self.short_id} no longer exists") from err
        return dict(self._container.attrs)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else err.__class__.__name__
