"""prepare and boot: the build base, a cold boot through DSM's install, checkpoint ``start-ready``.

The ``start-ready`` fingerprint covers this module's import closure.
"""

from __future__ import annotations

import asyncio

from vdsmlib.checkpoints import fingerprints as fps
from vdsmlib.checkpoints.vm import StageVm
from vdsmlib.errors import VdsmError
from vdsmlib.pipeline import base as base_image
from vdsmlib.pipeline.context import StageContext
from vdsmlib.pipeline.stage import (
    StageOutcome,
    checkpoint_labels,
    checkpoint_tag,
    record_checkpoint,
    run_wizard,
    start_vm,
)

__all__ = ["stage_boot", "stage_prepare"]


async def stage_prepare(ctx: StageContext) -> StageOutcome:
    """Upstream image, PAT, build base, QEMU version, accelerator, fingerprints."""
    prepared = await asyncio.to_thread(base_image.prepare_base, ctx)
    state = ctx.state
    state.fingerprints = fps.compute(ctx.params, prepared)
    ctx.save()
    return StageOutcome(
        status="ran" if prepared.built else "skipped",
        detail=prepared.detail,
        facts={"base_image": prepared.base_image, "accelerator": prepared.accelerator},
    )


async def stage_boot(ctx: StageContext) -> StageOutcome:
    """Cold boot (DSM installs), wait for the welcome screen, checkpoint ``start-ready``."""
    outcome = StageOutcome()
    assert ctx.state.base_image, "prepare has not run"
    with start_vm(ctx, "boot", ctx.state.base_image, restore=None) as vm:
        seconds = await vm.wait_api(ctx.params.timeouts.boot, progress=True)
        outcome.facts["boot_to_api_seconds"] = round(seconds, 2)
        await run_wizard(ctx, "boot", vm, outcome)
        # The PAT is no longer needed and must not end up in an image.
        vm.container.exec("sh", "-c", 'rm -f "${STORAGE:-/storage}"/*.pat')
        _check_disk_names(vm, ctx.params.base.disk_base)
        cp = await vm.checkpoint(
            "start-ready",
            labels=checkpoint_labels(ctx, "start-ready"),
            tag=checkpoint_tag(ctx, "start-ready"),
            timeout=ctx.params.timeouts.savevm,
        )
    record_checkpoint(ctx, cp)
    ctx.state.checkpoints["start-ready"] = cp.image
    ctx.save()
    outcome.facts["start_ready_vm_state_bytes"] = cp.vm_state_size
    outcome.detail = f"boot to API {seconds:.1f} s; checkpoint {cp.image}"
    return outcome


def _check_disk_names(vm: StageVm, disk_base: str) -> None:
    """The install made ``<disk_base>.boot.img`` and ``.system.img`` (params say what to expect).

    virtual-dsm names them ``DSM_VirtualDSM`` when the PAT is mounted at /boot.pat, as the build
    does, and after the PAT's file name when it comes from ``URL`` (v7.41 src/install.sh).
    """
    names = vm.container.exec("sh", "-c", 'ls "${STORAGE:-/storage}"').split()
    wanted = [f"{disk_base}.boot.img", f"{disk_base}.system.img"]
    if not all(name in names for name in wanted):
        found = sorted(n for n in names if n.endswith((".boot.img", ".system.img")))
        raise VdsmError(
            f"the install made {', '.join(found) or 'no boot/system disks'} in /storage, not "
            f"{' and '.join(wanted)}: set base.disk_base in params to the name before "
            "'.boot.img'"
        )
