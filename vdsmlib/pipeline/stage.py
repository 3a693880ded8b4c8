"""What every stage shares: its outcome, the wizard run in a browser, and checkpoint names.

The stage functions live in one module per checkpoint they build (:mod:`.boot` for
``start-ready``, :mod:`.configure` for ``final``, :mod:`.flatten` for the image, :mod:`.smoke`),
so each checkpoint's fingerprint covers the import closure of its own stage code
(:mod:`vdsmlib.checkpoints.fingerprints`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from vdsmlib.checkpoints.check import CommittedCheckpoint, record_committed
from vdsmlib.checkpoints.vm import Checkpoint, StageVm
from vdsmlib.docker import labels as L
from vdsmlib.docker.container import ContainerExited
from vdsmlib.errors import VdsmError
from vdsmlib.pipeline.base import cache_dir
from vdsmlib.pipeline.context import StageContext
from vdsmlib.wizard import (
    BrowserSession,
    Credentials,
    ScreenRecord,
    StageProfile,
    StageReport,
    Wizard,
    clip_screens,
    load_stage_profile,
)
from vdsmlib.wizard.secrets import secret_values
from vdsmlib.wizard.unknown import insert_entry

__all__ = [
    "StageOutcome",
    "WizardSteps",
    "checkpoint_labels",
    "checkpoint_records",
    "checkpoint_tag",
    "record_checkpoint",
    "run_wizard",
    "screen_entries",
    "start_vm",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


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
    """Run one wizard stage's profile in a browser context that keeps the DSM session: what a
    build runs, :class:`WizardSteps` opened, run until the stage is done, and closed."""
    steps = WizardSteps(ctx, stage, vm, outcome)
    await steps.open()
    await steps.run()
    await steps.close()


class WizardSteps:
    """One wizard stage's screens, step by step: what a stage notebook's cells call.

    :meth:`open` starts the browser on the stage's page; :meth:`step` performs the screen that
    shows now (a notebook cell run again for the next); :meth:`run` handles every remaining
    screen until the stage is done (the build); :meth:`close` saves the stage video, cuts each
    screen's clip and writes ``<evidence>/<stage>.screens.json``. The VM is watched meanwhile:
    if its container dies (QEMU killed, out of memory), the step fails at once with the
    container's log tail instead of waiting out the screen timeout. Example::

        steps = WizardSteps(ctx, "post-wizard", vm, outcome)
        await steps.open()
        await steps.step()          # the screen showing now; None once the stage is done
        await steps.run()           # the rest
        await steps.close()         # outcome.screens: each screen with screenshot and clip
    """

    def __init__(
        self,
        ctx: StageContext,
        stage: str,
        vm: StageVm,
        outcome: StageOutcome,
        *,
        evidence: Path | None = None,
    ) -> None:
        self.ctx = ctx
        self.stage = stage
        self.vm = vm
        self.outcome = outcome
        self.profile = load_stage_profile(ctx.params.profile, stage, search=ctx.params.profile_dirs)
        self.values = _wizard_values(ctx)
        self.session = BrowserSession(evidence or ctx.evidence_dir, storage_state=ctx.storage_state)
        self.wizard: Wizard | None = None
        self.report: StageReport | None = None

    @property
    def url(self) -> str:
        return self.vm.url

    def _open_wizard(self) -> Wizard:
        if self.wizard is None:
            raise VdsmError(f"stage {self.stage}: the browser is not open: `await open()` first")
        return self.wizard

    async def open(self) -> None:
        """Start the browser and open the stage's page (logged in after the admin stage)."""
        admin = self.ctx.params.admin
        # Before the admin account exists there is no login page to pass.
        credentials = (
            None if self.stage in ("boot", "admin") else Credentials(admin.user, admin.password)
        )
        await self.session.start()
        self.session.add_secrets(secret_values(self.values))
        try:
            page = await self.session.open_stage(self.stage, self.vm.url, credentials=credentials)
            self.wizard = Wizard(
                page, self.profile, self.values, self.session.evidence, base_url=self.vm.url
            )
        except BaseException:
            await self.session.close()
            raise

    async def step(self) -> ScreenRecord | None:
        """Perform the known screen showing now (None: the stage is done). An unknown screen
        raises :class:`~vdsmlib.wizard.UnknownScreenError` and leaves the page open: insert
        the suggestion (:meth:`insert_suggestion`) and step again."""
        return await self._watched(self._open_wizard().step())

    async def run(self) -> StageReport:
        """Every remaining screen until the stage is done; on an error the stage is closed
        (its video, clips and screens saved for the failed stage's record) and it is raised."""
        wizard = self._open_wizard()
        try:
            return await self._watched(wizard.run())
        except BaseException:
            with contextlib.suppress(Exception):
                await self.close(failed=True)
            raise

    async def screenshot(self, name: str = "now") -> Path:
        """A screenshot of the page now."""
        return await self._open_wizard().screenshot(name)

    def profile_file(self) -> Path:
        """The stage file the profile reads first (where a suggested entry goes)."""
        if not self.profile.files:
            raise VdsmError(f"profile {self.profile.profile} has no file for stage {self.stage}")
        return Path(self.profile.files[0])

    def insert_suggestion(self, suggestion: str) -> str:
        """Insert a suggested entry (YAML) into :meth:`profile_file`, reload the profile and
        return the new screen's id; the page and the VM stay."""
        screen_id = insert_entry(self.profile_file(), suggestion)
        self.reload_profile()
        return screen_id

    def reload_profile(self) -> StageProfile:
        """Read the stage's profile again (validated); the page, the VM and the report stay."""
        old = self._open_wizard()
        profile = load_stage_profile(
            self.ctx.params.profile, self.stage, search=self.ctx.params.profile_dirs
        )
        wizard = Wizard(old.page, profile, self.values, old.evidence, base_url=self.vm.url)
        wizard._shots, wizard.report = old._shots, old.report
        self.profile, self.wizard = profile, wizard
        return profile

    async def close(self, *, failed: bool = False) -> StageReport:
        """Close the stage's page (its video, each screen's clip) and the browser; record the
        screens (``outcome.screens`` unless ``failed``). Closing twice is fine."""
        if self.report is not None:
            return self.report
        wizard = self._open_wizard()
        report = wizard.report
        artifacts = await self.session.close_stage(self.stage)
        await self.session.close()
        report.video, report.trace = artifacts.video, artifacts.trace
        if artifacts.video is not None and artifacts.video_started is not None:
            await clip_screens(report, artifacts.video, artifacts.video_started)
        self.report = report
        entries = _save_screens(self.ctx, report, self.session.evidence)
        if failed:
            return report
        self.outcome.screens += entries
        self.outcome.screenshots += [str(p) for p in report.screenshots]
        if report.video:
            self.outcome.videos.append(str(report.video))
        if report.trace:
            self.outcome.traces.append(str(report.trace))
        handled = ", ".join(report.handled) or "none"
        self.outcome.detail = (self.outcome.detail + f" {self.stage}: screens {handled}.").strip()
        return report

    async def _watched(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(work)
        watch = asyncio.ensure_future(_watch(self.vm))
        try:
            await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, watch):
                pending.cancel()
            await asyncio.gather(task, watch, return_exceptions=True)
        if watch.done() and not watch.cancelled() and watch.exception() is not None:
            raise watch.exception()  # type: ignore[misc]
        return task.result()


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


def _save_screens(ctx: StageContext, report: StageReport, evidence: Path) -> list[dict[str, Any]]:
    """Write ``<evidence>/<stage>.screens.json`` (what a failed stage's record lists); a write
    that fails costs that file, not the stage (nor a failed stage's own error)."""
    entries = screen_entries(ctx.run_dir, report)
    path = evidence / f"{report.stage}.screens.json"
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


def checkpoint_records() -> Path:
    """Where builds record the checkpoints they commit, by image ID
    (:mod:`vdsmlib.checkpoints.check`): ``<cache>/checkpoints``."""
    return cache_dir() / "checkpoints"


def record_checkpoint(ctx: StageContext, cp: Checkpoint) -> None:
    """This build committed ``cp``: recorded by its image ID, which a copy cannot inherit."""
    record_committed(
        checkpoint_records(),
        CommittedCheckpoint(
            image_id=cp.image_id,
            name=cp.name,
            fingerprint=ctx.state.fingerprints[cp.name],
            run_id=ctx.state.run_id,
            tag=cp.image,
        ),
    )


def start_vm(ctx: StageContext, stage: str, image: str, restore: str | None) -> StageVm:
    binds = {ctx.state.pat_path: "/boot.pat"} if ctx.state.pat_path and restore is None else None
    return StageVm.start(
        ctx.client,
        image,
        ctx.params,
        accelerator=ctx.state.accelerator or "tcg",
        run_id=ctx.state.run_id,
        stage=stage,
        restore=restore,
        binds=binds,
        network=ctx.state.network,
    )
