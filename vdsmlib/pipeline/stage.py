"""What every stage shares: its outcome, the wizard run in a browser, and checkpoint names.

The stage functions live in one module per checkpoint they build (:mod:`.boot` for
``start-ready``, :mod:`.configure` for ``final``, :mod:`.flatten` for the image, :mod:`.smoke`),
so each checkpoint's fingerprint covers the import closure of its own stage code
(:mod:`vdsmlib.checkpoints.fingerprints`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vdsmlib.checkpoints.vm import StageVm
from vdsmlib.docker import labels as L
from vdsmlib.docker.container import ContainerExited
from vdsmlib.pipeline.context import StageContext
from vdsmlib.wizard import BrowserSession, Credentials, StageReport, WizardError, load_stage_profile
from vdsmlib.wizard import run_stage as run_wizard_stage

__all__ = [
    "StageOutcome",
    "checkpoint_labels",
    "checkpoint_tag",
    "run_wizard",
    "screen_entries",
    "start_vm",
]

log = logging.getLogger(__name__)


@dataclass
class StageOutcome:
    """What a stage reports back to the orchestrator (written to ``stages/<name>.json``)."""

    status: str = "ran"  # ran | skipped
    detail: str = ""
    screenshots: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    #: one entry per wizard screen (see :func:`screen_entries`), paths relative to the run folder
    screens: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def write(self, run_dir: Path, stage: str) -> None:
        folder = run_dir / "stages"
        folder.mkdir(exist_ok=True)
        (folder / f"{stage}.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, run_dir: Path, stage: str) -> StageOutcome | None:
        path = run_dir / "stages" / f"{stage}.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None


def _wizard_values(ctx: StageContext) -> dict[str, str]:
    admin = ctx.params.admin
    return {
        "server_name": admin.server_name,
        "admin_user": admin.user,
        "admin_password": admin.password,
    }


async def run_wizard(ctx: StageContext, stage: str, vm: StageVm, outcome: StageOutcome) -> None:
    """Run one wizard stage's profile in a browser context that keeps the DSM session.

    The VM is watched meanwhile: if its container dies (QEMU killed, out of memory), the stage
    fails at once with the container's log tail instead of waiting out the screen timeout.
    """
    profile = load_stage_profile(ctx.params.profile, stage, search=ctx.params.profile_dirs)
    admin = ctx.params.admin
    # Before the admin account exists there is no login page to pass.
    credentials = None if stage in ("boot", "admin") else Credentials(admin.user, admin.password)
    async with BrowserSession(ctx.evidence_dir, storage_state=ctx.storage_state) as session:
        wizard = asyncio.create_task(
            run_wizard_stage(session, profile, _wizard_values(ctx), vm.url, credentials=credentials)
        )
        watch = asyncio.create_task(_watch(vm))
        try:
            await asyncio.wait({wizard, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (wizard, watch):
                task.cancel()
            await asyncio.gather(wizard, watch, return_exceptions=True)
        if watch.done() and not watch.cancelled() and watch.exception() is not None:
            raise watch.exception()  # type: ignore[misc]
        try:
            report = wizard.result()
        except WizardError as err:
            if err.report is not None:  # the failed stage's record reads them from here
                _save_screens(ctx, err.report)
            raise
    outcome.screens += _save_screens(ctx, report)
    outcome.screenshots += [str(p) for p in report.screenshots]
    if report.video:
        outcome.videos.append(str(report.video))
    if report.trace:
        outcome.traces.append(str(report.trace))
    handled = ", ".join(report.handled) or "none"
    outcome.detail = (outcome.detail + f" {stage}: screens {handled}.").strip()


def screen_entries(run_dir: Path, report: StageReport) -> list[dict[str, Any]]:
    """The screens of a wizard report for result.json: each handled or skipped screen, then
    the one it failed on, with screenshot, clip and video relative to ``run_dir``."""

    def rel(path: Path | None) -> str | None:
        if path is None:
            return None
        try:
            return str(path.relative_to(run_dir))
        except ValueError:
            return str(path)

    records = [*report.screens, *([report.failed_screen] if report.failed_screen else [])]
    return [
        {
            "stage": report.stage,
            "screen": record.screen,
            "screenshot": rel(record.screenshot),
            "clip": rel(record.clip),
            "video": rel(report.video),
            "video_start": record.video_start,
            "video_end": record.video_end,
            "seconds_to_leave": round(record.seconds_to_leave, 3),
            "skipped": record.skipped,
            "failed": record.failed,
        }
        for record in records
    ]


def _save_screens(ctx: StageContext, report: StageReport) -> list[dict[str, Any]]:
    """Write ``evidence/<stage>.screens.json`` (what a failed stage's record lists); a write
    that fails costs that file, not the stage (nor a failed stage's own error)."""
    entries = screen_entries(ctx.run_dir, report)
    path = ctx.evidence_dir / f"{report.stage}.screens.json"
    try:
        path.write_text(json.dumps(entries, indent=2) + "\n")
    except OSError as err:
        log.warning("stage %s: %s not written: %s", report.stage, path, err)
    return entries


async def _watch(vm: StageVm, interval: float = 1.0) -> None:
    """Return never; raise ContainerExited as soon as the VM's container is gone."""
    while True:
        reason = await asyncio.to_thread(vm.container.died)
        if reason:
            raise ContainerExited(f"the VM died during the wizard: {reason}")
        await asyncio.sleep(interval)


def checkpoint_labels(ctx: StageContext, name: str) -> dict[str, str]:
    state, params = ctx.state, ctx.params
    return L.owner_labels(
        "checkpoint",
        state.run_id,
        **{
            L.STAGE: name,
            L.FINGERPRINT: state.fingerprints[name],
            L.TARGET: params.target,
            L.DSM_VERSION: params.dsm_version,
            L.DSM_RELEASE: params.dsm_release,
            L.QEMU_VERSION: state.qemu_version or "",
            L.ACCELERATOR: state.accelerator or "",
            L.MACHINE: params.vm.machine,
            L.CPU_MODEL: params.vm.cpu_model,
        },
    )


def checkpoint_tag(ctx: StageContext, name: str) -> str:
    fp = ctx.state.fingerprints[name]
    return f"{ctx.params.dsm_version}-{ctx.state.accelerator}-{name}-{fp[:12]}"


def start_vm(ctx: StageContext, stage: str, image: str, loadvm: str | None) -> StageVm:
    binds = {ctx.state.pat_path: "/boot.pat"} if ctx.state.pat_path and loadvm is None else None
    return StageVm.start(
        ctx.client,
        image,
        ctx.params,
        accelerator=ctx.state.accelerator or "tcg",
        run_id=ctx.state.run_id,
        stage=stage,
        loadvm=loadvm,
        binds=binds,
        network=ctx.state.network,
    )
