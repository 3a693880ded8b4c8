"""Restore a checkpoint into a running VM to look at a wizard screen by hand.

Example (JupyterLab, see notebooks/explore.ipynb)::

    vm = restore_checkpoint(client, params, "start-ready")
    vm.url                      # http://127.0.0.1:49153, DSM exactly as at that checkpoint
    ...
    vm.close()                  # or leave it running and remove it later with `vdsm clean`
"""

from __future__ import annotations

import logging

import docker

from vdsmlib.build.context import new_run_id
from vdsmlib.build.vm import StageVm
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images
from vdsmlib.errors import VdsmError
from vdsmlib.params import Params

__all__ = [
    "explore",
    "find_checkpoint",
    "kvm_usable",
    "restore_checkpoint",
]

log = logging.getLogger(__name__)


def find_checkpoint(
    client: docker.DockerClient, params: Params, name: str, fingerprint: str | None = None
) -> tuple[str, str]:
    """The newest checkpoint image ``name`` of this DSM version, and the accelerator to run it.

    A TCG snapshot runs anywhere (``KVM=N``); a KVM snapshot needs usable KVM, and asking for it
    where there is none makes :meth:`StageVm.start` refuse with the reason.
    """
    labels = {L.KIND: "checkpoint", L.STAGE: name, L.DSM_VERSION: params.dsm_version}
    if fingerprint:
        labels[L.FINGERPRINT] = fingerprint
    images = [i for i in find_images(client, labels) if i.tags]
    if not images:
        raise VdsmError(
            f"no checkpoint {name!r} for dsm_version {params.dsm_version}: run a build first "
            "(`make build`, or papermill notebooks/build.ipynb ...); `vdsm checkpoints` lists them"
        )
    image = images[0]
    recorded = image.labels.get(L.ACCELERATOR, "tcg")
    return image.tags[0], "kvm" if recorded == "kvm" and kvm_usable() else "tcg"


def kvm_usable() -> bool:
    """KVM as the build would use it: /dev/kvm exists and a probe on this kernel booted a guest
    under it. Nothing probed (no build ran here yet) means no: a TCG restore is always safe."""
    import json
    import os
    import platform

    from vdsmlib.build.base import cache_dir

    if not os.path.exists("/dev/kvm"):
        return False
    try:
        probes = json.loads((cache_dir() / "accelerator.json").read_text())
    except (OSError, ValueError):
        return False
    # keys are "<kernel release>|<QEMU version>" (vdsmlib.build.base._probe)
    here = [accel for key, (accel, _) in probes.items() if key.split("|")[0] == platform.release()]
    return bool(here) and all(accel == "kvm" for accel in here)


def restore_checkpoint(
    client: docker.DockerClient, params: Params, name: str, *, keep: bool = True
) -> StageVm:
    """Start the newest checkpoint ``name`` with ``-loadvm``; the VM stays until closed."""
    image, accelerator = find_checkpoint(client, params, name)
    return StageVm.start(
        client,
        image,
        params,
        accelerator=accelerator,
        run_id=new_run_id(),
        stage=f"explore-{name}",
        loadvm=name,
        keep=keep,
    )


async def explore(params: Params, name: str, client: docker.DockerClient | None = None) -> StageVm:
    """Restore checkpoint ``name``, wait for the Web API, leave it running; log URL and login."""
    from vdsmlib.docker.engine import connect

    vm = restore_checkpoint(client or connect(), params, name, keep=True)
    try:
        await vm.wait_api(params.timeouts.restore)
    except BaseException:
        vm.container.keep = False
        vm.close()
        raise
    log.info(
        "DSM restored from checkpoint %s at %s (login %s; remove with `docker rm -fv %s`)",
        name,
        vm.url,
        params.admin.user,
        vm.container.short_id,
    )
    return vm
