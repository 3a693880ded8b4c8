"""The VM of a build stage: a container of the base image or of a checkpoint, with QMP.

It is where the pieces meet: Docker (the container), QEMU (QMP on a unix socket in a
bind-mounted folder, so QMP is never published beyond this host), and the DSM Web API (readiness).
A checkpoint is made by :meth:`StageVm.checkpoint`: the VM migrates into a state file in the
container's storage folder (``/storage/<name>.state``, :mod:`vdsmlib.qemu.migration`), the file
is read back, QEMU quits, the stopped container (disks and state file) is committed with its
labels. Nothing is tagged unless all of that succeeded. A checkpoint restores with
``-incoming file:/storage/<name>.state`` (:meth:`StageVm.start` with ``restore``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import docker

from vdsmlib.docker import labels as L
from vdsmlib.docker.container import VmContainer
from vdsmlib.docker.engine import DockerError
from vdsmlib.params import Params
from vdsmlib.qemu.errors import MigrationError, QmpError
from vdsmlib.qemu.migration import (
    STATE_DIR,
    STATE_MAGIC,
    STATE_SUFFIX,
    incoming_argument,
    incoming_failure,
    migrate_to_file,
    state_path,
    wait_incoming,
)
from vdsmlib.qemu.qmp import QmpSession
from vdsmlib.readiness import ReadinessTimeout
from vdsmlib.resource import Closeable
from vdsmlib.services.dataplane import SERVICE_PORTS, Endpoints
from vdsmlib.webapi.readiness import DsmApiReady

__all__ = [
    "CHECKPOINT_REPOSITORY",
    "QMP_DIR_IN_CONTAINER",
    "Checkpoint",
    "StageVm",
    "vm_env",
]

log = logging.getLogger(__name__)

CHECKPOINT_REPOSITORY = "vdsm-ci/checkpoint"
QMP_DIR_IN_CONTAINER = "/vdsm-ci"


def vm_env(params: Params, accelerator: str) -> dict[str, str]:
    """Container environment that fixes the VM's shape; identical for save and every restore."""
    env = {
        "KVM": "Y" if accelerator == "kvm" else "N",
        "RAM_SIZE": params.vm.ram,
        "CPU_CORES": str(params.vm.cpu_cores),
        "CPU_MODEL": params.vm.cpu_model,
        "MACHINE": params.vm.machine,
        "DISK_SIZE": params.vm.disk_size,
        # the data disk as qcow2 like boot and system (the build base converts those): a
        # layer stores a sparse raw file whole
        "DISK_FMT": "qcow2",
    }
    env.update(params.env)
    return env


def _check_restorable(client: docker.DockerClient, image: str, accelerator: str) -> None:
    """Refuse a snapshot that cannot load here: KVM and TCG state do not load in each other."""
    labels = client.images.get(image).labels or {}
    recorded = labels.get(L.ACCELERATOR)
    if recorded and recorded != accelerator:
        raise DockerError(
            f"{image} holds a VM state saved under {recorded} (QEMU "
            f"{labels.get(L.QEMU_VERSION, '?')}), and this VM would run under {accelerator}: "
            f"a {recorded} state does not load under {accelerator}. Rebuild for this machine "
            f"(accelerator={accelerator}) or restore it where {recorded} is used"
        )


@dataclass(frozen=True)
class Checkpoint:
    name: str
    image: str
    image_id: str
    vm_state_size: int
    seconds: float


class StageVm(Closeable):
    """A stage's VM container with a QMP socket; a context manager that always cleans up."""

    def __init__(self, vm: VmContainer, qmp_dir: Path, params: Params, accelerator: str):
        self.container = vm
        self.qmp_dir = qmp_dir
        self.params = params
        self.accelerator = accelerator
        self.restored_from: str | None = None

    @classmethod
    def start(
        cls,
        client: docker.DockerClient,
        image: str,
        params: Params,
        *,
        accelerator: str,
        run_id: str,
        stage: str,
        restore: str | None = None,
        binds: Mapping[str, str] | None = None,
        keep: bool = False,
        network: str | None = None,
    ) -> StageVm:
        """Start ``image``; with ``restore`` the VM restores that checkpoint's state file
        (``-incoming file:/storage/<restore>.state``) instead of booting.

        ``network``: the build's own network (see :func:`vdsmlib.docker.network.build_network`),
        so that no other container reaches the wizard before the admin account exists.
        """
        if restore:
            _check_restorable(client, image, accelerator)
        # A short path: unix socket paths are limited to 108 bytes.
        qmp_dir = Path(tempfile.mkdtemp(prefix=f"vdsm-ci-{run_id[-4:]}-"))
        arguments = f"-qmp unix:{QMP_DIR_IN_CONTAINER}/qmp.sock,server=on,wait=off"
        if restore:
            # no -S: QEMU runs the VM once the state is loaded (the state was saved running)
            arguments = f"{incoming_argument(restore)} " + arguments
        env = vm_env(params, accelerator)
        env["ARGUMENTS"] = arguments
        devices = list(params.run.devices)
        if accelerator == "kvm":
            devices.append("/dev/kvm")
        try:
            vm = VmContainer.start(
                client,
                image,
                env=env,
                # the Web API, and the file services the services stage uses as a client would
                ports=(5000, *SERVICE_PORTS.values()),
                labels=L.owner_labels("stage-container", run_id, **{L.STAGE: stage}),
                binds={str(qmp_dir): QMP_DIR_IN_CONTAINER, **(binds or {})},
                devices=devices,
                cap_add=params.run.cap_add,
                keep=keep,
                network=network,
            )
        except BaseException:
            shutil.rmtree(qmp_dir, ignore_errors=True)
            raise
        stage_vm = cls(vm, qmp_dir, params, accelerator)
        stage_vm.restored_from = restore
        return stage_vm

    @classmethod
    def attach(
        cls, client: docker.DockerClient, container_id: str, params: Params, accelerator: str
    ) -> StageVm:
        """Reattach to a VM a previous stage (another process) left running."""
        vm = VmContainer.attach(client, container_id)
        binds = [m for m in vm.attrs()["Mounts"] if m["Destination"] == QMP_DIR_IN_CONTAINER]
        if not binds:
            raise DockerError(f"container {vm.short_id} has no QMP folder mounted")
        return cls(vm, Path(binds[0]["Source"]), params, accelerator)

    def close(self) -> None:
        """Remove the container (unless kept) and its QMP folder. Idempotent."""
        self.container.close()
        if not self.container.keep:
            shutil.rmtree(self.qmp_dir, ignore_errors=True)

    @property
    def url(self) -> str:
        return self.container.url(5000)

    def endpoints(self) -> Endpoints:
        """Where SMB, NFS and iSCSI of this VM answer on the host (published on 127.0.0.1)."""
        return Endpoints("127.0.0.1", *map(self.container.host_port, SERVICE_PORTS.values()))

    def qmp(self, *, connect_timeout: float = 60.0) -> QmpSession:
        return QmpSession(
            self.qmp_dir / "qmp.sock",
            connect_timeout=connect_timeout,
            describe_failure=lambda: self.container.logs_tail(20),
            claim_socket=self._claim_qmp_socket,
        )

    def _claim_qmp_socket(self) -> None:
        """Hand QEMU's socket to this user: QEMU (root in the container) creates it 0755.

        A build run by an ordinary user in the ``docker`` group could not connect otherwise;
        the container's root changes the owner (the folder is this user's already).
        """
        self.container.exec(
            "chown", f"{os.getuid()}:{os.getgid()}", f"{QMP_DIR_IN_CONTAINER}/qmp.sock"
        )

    async def wait_api(self, timeout: float, *, progress: object = None) -> float:
        """Wait until DSM's Web API answers (not just port 5000); returns the seconds it took."""
        started = time.monotonic()
        await (
            DsmApiReady(self.url)
            .with_timeout(timeout)
            .wait_async(
                describe=lambda: self.container.logs_tail(20),
                progress=progress,
                alive=self.container.died,
            )
        )
        return time.monotonic() - started

    async def restore_failure(self, timeout: float) -> str | None:
        """Wait until the checkpoint this VM was started from (``restore``) has loaded: None
        then (the VM runs), or why it did not load.

        A failed load ends QEMU; its reason is QEMU's own line in the container's log when the
        log has it (virtual-dsm from 7.63 runs QEMU in the foreground; before that QEMU runs
        daemonized and its stderr goes nowhere once it has started). A VM that is still there
        but slow raises :class:`MigrationError` or :class:`QmpError`: that is no proof that
        the checkpoint is bad.
        """
        if not self.restored_from:
            return None
        deadline = time.monotonic() + timeout
        connected = False
        while True:
            left = max(deadline - time.monotonic(), 1.0)
            try:
                # short connection attempts: a QEMU that failed its load at once is gone
                async with self.qmp(connect_timeout=min(5.0, left)) as qmp:
                    connected = True
                    await wait_incoming(qmp, timeout=left)
                return None
            except MigrationError as err:
                if "did not complete within" in str(err):
                    raise
                return incoming_failure(self.container.logs_tail(30)) or str(err)
            except (QmpError, DockerError) as err:
                alive = self.container.died() is None
                if alive and not connected and time.monotonic() < deadline:
                    continue
                try:
                    code = await self.container.wait_exit_async(timeout=30)
                except ReadinessTimeout:
                    raise err from None
                from_log = incoming_failure(self.container.logs_tail(30))
                return from_log or (
                    f"QEMU ended (container exit {code}) before it had loaded "
                    f"{state_path(self.restored_from)}; QEMU's own error is not in the log "
                    "(virtual-dsm before 7.63 runs QEMU daemonized)"
                )

    async def checkpoint(
        self,
        name: str,
        *,
        labels: Mapping[str, str],
        tag: str,
        timeout: float,
    ) -> Checkpoint:
        """Migrate the VM into ``/storage/<name>.state``, read it back, stop QEMU, commit and
        tag the container.

        A checkpoint holds its own state file only: the state files of the checkpoints the VM
        was restored from (``start-ready.state`` in ``final``) are deleted first (a whiteout in
        the new layer; the earlier checkpoint's image keeps its file), so that the final image,
        which copies the storage folder of ``final``, carries nothing of ``start-ready``. The
        disks hold no internal snapshot.
        """
        started = time.monotonic()
        path = state_path(name)
        # the state of the checkpoint restored was loaded at start: QEMU holds no file open
        others = f'for f in {STATE_DIR}/*{STATE_SUFFIX}; do [ "$f" = {path} ] || rm -f "$f"; done'
        self.container.exec("sh", "-c", others)
        async with self.qmp() as qmp:
            # a raw disk would migrate, but a layer stores it whole (virtual-dsm's 10 GiB system
            # disk); the build base attaches every disk as qcow2 (Dockerfile), so one that is
            # raw is a base without that patch
            devices = await qmp.block_devices()
            raw = [f"{d.name} ({d.format})" for d in devices if not d.read_only]
            raw = [r for r in raw if not r.endswith("(qcow2)")]
            if raw:
                raise MigrationError(
                    f"checkpoint {name!r} not taken: disk {', '.join(raw)} is not qcow2. Every "
                    "writable disk must be qcow2 (virtual-dsm attaches boot and system disks raw; "
                    "the build base converts them: build it from Dockerfile with base.patch_file)"
                )
            saved = await migrate_to_file(qmp, path, timeout=timeout)
            size = self._read_back_state(path)
            await qmp.quit()
        code = await self.container.wait_exit_async(timeout=120)
        if code not in (0, 143):
            log.warning(
                "container exited %s after QEMU quit:\n%s", code, self.container.logs_tail()
            )
        image = self.container.commit(CHECKPOINT_REPOSITORY, tag, labels=labels)
        log.info(
            "checkpoint %s: %.1f MiB state in %s (%.1f s)", name, size / 2**20, path, saved.seconds
        )
        return Checkpoint(
            name=name,
            image=f"{CHECKPOINT_REPOSITORY}:{tag}",
            image_id=str(image.id),
            vm_state_size=size,
            seconds=time.monotonic() - started,
        )

    def _read_back_state(self, path: str) -> int:
        """The state file's size, once it exists, is not empty and starts as a migration
        stream does; else :class:`MigrationError`."""
        out = self.container.exec(
            "sh", "-c", f"stat -c %s {path} && od -An -tx1 -N{len(STATE_MAGIC)} {path}"
        )
        lines = out.split("\n", 1)
        size = int(lines[0]) if lines[0].strip().isdigit() else 0
        head = bytes.fromhex("".join(lines[1].split())) if len(lines) > 1 else b""
        if size <= len(STATE_MAGIC) or head != STATE_MAGIC:
            raise MigrationError(
                f"the state file {path} did not read back: {size} bytes, starting "
                f"{head.hex() or 'with nothing'} (a migration stream starts {STATE_MAGIC.hex()})"
            )
        return size
