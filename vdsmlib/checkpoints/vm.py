"""The VM of a build stage: a container of the base image or of a checkpoint, with QMP.

It is where the pieces meet: Docker (the container), QEMU (QMP on a unix socket in a
bind-mounted folder, so QMP is never published beyond this host), and the DSM Web API (readiness).
A checkpoint is made by :meth:`StageVm.checkpoint`: savevm, read back, QEMU quits, the stopped
container is committed with its labels. Nothing is tagged unless all of that succeeded.
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
from vdsmlib.qemu.qmp import QmpSession
from vdsmlib.qemu.snapshot import delete_snapshot, other_snapshots, save_snapshot
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
        "DISK_FMT": "qcow2",  # savevm needs every writable disk to be qcow2
    }
    env.update(params.env)
    return env


def _check_restorable(client: docker.DockerClient, image: str, accelerator: str) -> None:
    """Refuse a snapshot that cannot load here: KVM and TCG state do not load in each other."""
    labels = client.images.get(image).labels or {}
    recorded = labels.get(L.ACCELERATOR)
    if recorded and recorded != accelerator:
        raise DockerError(
            f"{image} holds a snapshot saved under {recorded} (QEMU "
            f"{labels.get(L.QEMU_VERSION, '?')}), and this VM would run under {accelerator}: "
            f"a {recorded} snapshot does not load under {accelerator}. Rebuild for this machine "
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
        loadvm: str | None = None,
        binds: Mapping[str, str] | None = None,
        keep: bool = False,
        network: str | None = None,
    ) -> StageVm:
        """Start ``image``; with ``loadvm`` the VM restores that snapshot instead of booting.

        ``network``: the build's own network (see :func:`vdsmlib.docker.network.build_network`),
        so that no other container reaches the wizard before the admin account exists.
        """
        if loadvm:
            _check_restorable(client, image, accelerator)
        # A short path: unix socket paths are limited to 108 bytes.
        qmp_dir = Path(tempfile.mkdtemp(prefix=f"vdsm-ci-{run_id[-4:]}-"))
        arguments = f"-qmp unix:{QMP_DIR_IN_CONTAINER}/qmp.sock,server=on,wait=off"
        if loadvm:
            arguments = f"-loadvm {loadvm} " + arguments
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
        stage_vm.restored_from = loadvm
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

    async def checkpoint(
        self,
        name: str,
        *,
        labels: Mapping[str, str],
        tag: str,
        timeout: float,
    ) -> Checkpoint:
        """savevm ``name``, verify it reads back, stop QEMU, commit and tag the container.

        A checkpoint's disks hold its own snapshot only: the snapshots the VM was restored from
        (``start-ready`` in ``final``) are deleted first. Their VM state would be a second copy
        of the guest's RAM in the checkpoint and in the final image built from it, and qcow2
        allocates the lowest free clusters first, so the new VM state fills the clusters the old
        one freed and the disks do not grow by it. Images of earlier checkpoints keep theirs.
        """
        started = time.monotonic()
        async with self.qmp() as qmp:
            for old in await other_snapshots(qmp, name):
                await delete_snapshot(qmp, old, timeout=timeout, missing_ok=True)
            info = await save_snapshot(qmp, name, timeout=timeout, replace=True)
            await qmp.quit()
        code = await self.container.wait_exit_async(timeout=120)
        if code not in (0, 143):
            log.warning(
                "container exited %s after QEMU quit:\n%s", code, self.container.logs_tail()
            )
        image = self.container.commit(CHECKPOINT_REPOSITORY, tag, labels=labels)
        return Checkpoint(
            name=name,
            image=f"{CHECKPOINT_REPOSITORY}:{tag}",
            image_id=str(image.id),
            vm_state_size=info.vm_state_size,
            seconds=time.monotonic() - started,
        )
