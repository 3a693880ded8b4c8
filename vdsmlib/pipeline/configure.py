"""admin, post-wizard and services: the wizard, the services, checkpoint ``final``.

The three stages share one VM (restored from ``start-ready``); the ``final`` fingerprint covers
this module's import closure.
"""

from __future__ import annotations

import asyncio
import logging

from vdsmlib.checkpoints.check import CheckpointRestoreError, note_restore_failed
from vdsmlib.checkpoints.vm import StageVm
from vdsmlib.errors import VdsmError
from vdsmlib.pipeline.context import StageContext
from vdsmlib.pipeline.stage import (
    StageOutcome,
    WizardSteps,
    checkpoint_labels,
    checkpoint_tag,
    record_checkpoint,
    run_wizard,
    start_vm,
)
from vdsmlib.qemu.balloon import reclaim_guest_memory
from vdsmlib.services import api as services_api
from vdsmlib.services import dataplane
from vdsmlib.webapi.client import DsmClient
from vdsmlib.wizard.secrets import forget_cookies, session_ids

__all__ = [
    "WIZARD_ORDER",
    "apply_services",
    "checkpoint_final",
    "restore_vm",
    "stage_admin",
    "stage_post_wizard",
    "stage_services",
]

log = logging.getLogger(__name__)


#: the wizard stages of the VM restored from ``start-ready``, in build order
WIZARD_ORDER = ("admin", "post-wizard")


def _configure_vm(ctx: StageContext, stage: str) -> tuple[StageVm, bool]:
    """The VM shared by admin, post-wizard and services: reattach (False), or restore
    start-ready (True)."""
    state = ctx.state
    if state.container_id:
        vm = StageVm.attach(ctx.client, state.container_id, ctx.params, state.accelerator or "tcg")
        if vm.container.died() is None:
            return vm, False
        reason = vm.container.died()
        vm.container.keep = False
        vm.close()
        raise VdsmError(f"the VM of this build is gone: {reason}")
    image = state.checkpoints.get("start-ready")
    if not image:
        raise VdsmError("no start-ready checkpoint to restore: run the boot stage first")
    vm = start_vm(ctx, stage, image, restore="start-ready")
    vm.container.keep = True  # later stages (other processes) reattach; the orchestrator reaps
    state.container_id = vm.container.id
    ctx.save()
    return vm, True


async def restore_vm(ctx: StageContext, stage: str, outcome: StageOutcome) -> StageVm:
    """Step 1 of admin, post-wizard and services: the VM the stage starts from.

    In a build, the VM a previous stage left running (reattached), or ``start-ready`` restored
    (the build resumed there). A stage run on its own (its notebook on a finished run) restores
    ``start-ready`` and replays the wizard stages before it headless (their evidence goes to
    ``evidence/replay-<stage>/``), so it starts where it starts in a build.
    """
    vm, restored = _configure_vm(ctx, stage)
    why = await vm.restore_failure(ctx.params.timeouts.restore) if restored else None
    if why is not None:
        # QEMU could not load the checkpoint's state: the orchestrator marks the checkpoint
        # bad and falls back (through the run folder: the stage may run in another process)
        vm.container.keep = False
        vm.close()
        ctx.state.container_id = None
        ctx.save()
        note_restore_failed(ctx.run_dir, "start-ready", why)
        image = ctx.state.checkpoints.get("start-ready", "?")
        raise CheckpointRestoreError("start-ready", image, why)
    seconds = await vm.wait_api(ctx.params.timeouts.restore)
    outcome.facts["api_ready_seconds"] = round(seconds, 2)
    if restored and stage != WIZARD_ORDER[0]:
        earlier = (
            WIZARD_ORDER if stage not in WIZARD_ORDER else WIZARD_ORDER[: WIZARD_ORDER.index(stage)]
        )
        for name in earlier:
            log.info("stage %s: replaying stage %s from start-ready", stage, name)
            steps = WizardSteps(
                ctx, name, vm, StageOutcome(), evidence=ctx.evidence_dir / f"replay-{stage}"
            )
            await steps.open()
            await steps.run()
            await steps.close()
        outcome.facts["replayed"] = list(earlier)
    return vm


async def _configure_stage(ctx: StageContext, stage: str) -> StageOutcome:
    outcome = StageOutcome()
    vm = await restore_vm(ctx, stage, outcome)
    await run_wizard(ctx, stage, vm, outcome)
    return outcome


async def stage_admin(ctx: StageContext) -> StageOutcome:
    """Welcome button and the admin account form."""
    return await _configure_stage(ctx, "admin")


async def stage_post_wizard(ctx: StageContext) -> StageOutcome:
    """Whatever post-wizard screens DSM shows, until the desktop."""
    return await _configure_stage(ctx, "post-wizard")


async def apply_services(ctx: StageContext, vm: StageVm, outcome: StageOutcome) -> None:
    """Step of services: the desired services through the Web API, verified, and a file in the
    first share for every restore of the final image to serve (smoke reads it back over SMB and
    NFS): the data plane used as a client would, before the checkpoint."""
    params = ctx.params
    with (
        DsmClient(vm.url, timeout=params.timeouts.request) as dsm,
        dsm.login(params.admin.user, params.admin.password) as session,
    ):
        report = await asyncio.to_thread(services_api.apply, session, params.services)
        await asyncio.to_thread(services_api.verify, session, params.services)
    outcome.facts["services_changed"] = list(report.changes)
    outcome.facts["build_file"] = await asyncio.to_thread(
        dataplane.write_build_file,
        vm.endpoints(),
        params.services,
        user=params.admin.user,
        password=params.admin.password,
    )


async def checkpoint_final(ctx: StageContext, vm: StageVm, outcome: StageOutcome) -> None:
    """Last step of services: end the build's DSM sessions, let the guest give its free and cache
    memory back (:func:`~vdsmlib.qemu.balloon.reclaim_guest_memory`), migrate into
    ``final.state``, read back, commit (the ``final`` checkpoint); the VM is removed."""
    params = ctx.params
    vm.container.keep = False
    try:
        outcome.facts["sessions_ended"] = await asyncio.to_thread(_end_sessions, ctx, vm.url)
        # Free and cache pages the guest gives up become zero: the VM state stores them as flags.
        async with vm.qmp() as qmp:
            memory = await reclaim_guest_memory(qmp, timeout=params.timeouts.savevm)
        log.info("before the final checkpoint: %s", memory.summary())
        outcome.facts["memory_reclaimed_bytes"] = memory.reclaimed
        cp = await vm.checkpoint(
            "final",
            labels=checkpoint_labels(ctx, "final"),
            tag=checkpoint_tag(ctx, "final"),
            timeout=params.timeouts.savevm,
        )
    finally:
        vm.close()
        ctx.state.container_id = None
        ctx.save()
    record_checkpoint(ctx, cp)
    ctx.state.checkpoints["final"] = cp.image
    ctx.save()
    outcome.facts["final_vm_state_bytes"] = cp.vm_state_size
    changed = outcome.facts.get("services_changed") or []
    outcome.detail = (
        outcome.detail + f" services applied ({', '.join(changed) or 'no changes'}) "
        f"and verified; checkpoint {cp.image}"
    ).strip()


async def stage_services(ctx: StageContext) -> StageOutcome:
    """Desired services via the Web API (NFS optionally via the UI); checkpoint ``final``."""
    outcome = StageOutcome()
    vm = await restore_vm(ctx, "services", outcome)
    if ctx.params.nfs_via == "ui" and ctx.params.services.nfs:
        await run_wizard(ctx, "services-ui", vm, outcome)
    await apply_services(ctx, vm, outcome)
    await checkpoint_final(ctx, vm, outcome)
    return outcome


def _end_sessions(ctx: StageContext, url: str) -> int:
    """Log out every DSM session the build opened, before the ``final`` checkpoint.

    The snapshot holds DSM's memory: a session still open there would work as admin on every
    container of the final image. The browser's sessions (its ``id`` cookie in the storage
    state, the ids in the stage traces) are ended through ``SYNO.API.Auth`` logout and checked
    to be refused afterwards; the storage state keeps no cookie. Returns how many were ended.
    """
    sids = session_ids(ctx.run_dir)
    auth = "SYNO.API.Auth"
    with DsmClient(url) as dsm:
        entry = dsm.api_entry(auth)
        cgi = str(entry.get("path", "entry.cgi"))
        for sid in sorted(sids):
            params = {"api": auth, "version": "1", "method": "logout", "_sid": sid}
            dsm.call(cgi, params, api=auth, method="logout", cookies={"id": sid})
        alive = [sid for sid in sorted(sids) if _session_works(dsm, sid)]
    if alive:
        raise VdsmError(
            f"{len(alive)} DSM session(s) of the build still work after logout: the final "
            "checkpoint would carry an admin session; see SYNO.API.Auth logout of this DSM"
        )
    forget_cookies(ctx.storage_state)
    log.info("ended %d DSM session(s) before the final checkpoint", len(sids))
    return len(sids)


def _session_works(dsm: DsmClient, sid: str) -> bool:
    """True when ``sid`` is accepted for a call that needs a login."""
    api = "SYNO.Core.System"
    params = {"api": api, "version": "1", "method": "info", "_sid": sid}
    envelope = dsm.call(
        str(dsm.api_entry(api).get("path", "entry.cgi")),
        params,
        api=api,
        method="info",
        cookies={"id": sid},
    )
    return bool(envelope.get("success"))
