"""Restore a checkpoint into a running VM to look at a wizard screen by hand.

From a failed run (JupyterLab, see notebooks/explore.ipynb)::

    ex = await Explorer.open()          # the last failed run in out/, or Explorer.open(run_dir)
    ex.failure                          # the UnknownScreenError it stopped at (same diagnosis)
    ex.insert_suggestion()              # into the right profile file, nested, then reloaded
    await ex.step()                     # perform the screen that showing now, wait for the next
    record = await ex.resume()          # close, and build again from the checkpoint

It restores that run's own checkpoint (by fingerprint: its knobs and params), replays the wizard
stages between the checkpoint and the failing one, and steps through the failing stage until
the screen that failed.

Without a run::

    vm = restore_checkpoint(client, params, "start-ready")
    vm.url                      # http://127.0.0.1:49153, DSM exactly as at that checkpoint
    ...
    vm.close()                  # or leave it running and remove it later with `vdsm clean`
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from vdsmlib.checkpoints.vm import StageVm
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images
from vdsmlib.errors import VdsmError
from vdsmlib.evidence.record import BuildRecord, load_record
from vdsmlib.params import Params, load_params
from vdsmlib.pipeline.context import RunState, new_run_id
from vdsmlib.wizard import (
    BrowserSession,
    Credentials,
    LocatorReport,
    Screen,
    ScreenRecord,
    StageProfile,
    UnknownScreenError,
    Wizard,
    load_stage_profile,
)
from vdsmlib.wizard import run_stage as run_wizard_stage
from vdsmlib.wizard.unknown import insert_entry

__all__ = [
    "WIZARD_STAGES",
    "Explorer",
    "check_before_restore",
    "explore",
    "find_checkpoint",
    "kvm_usable",
    "last_failed_run",
    "out_folders",
    "restore_checkpoint",
    "run_fingerprint",
]

#: build stage -> the wizard stage (profile file) it runs after ``start-ready``, in order
WIZARD_STAGES = {"admin": "admin", "post-wizard": "post-wizard", "services": "services-ui"}

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

    from vdsmlib.pipeline.base import cache_dir

    if not os.path.exists("/dev/kvm"):
        return False
    try:
        probes = json.loads((cache_dir() / "accelerator.json").read_text())
    except (OSError, ValueError):
        return False
    # keys are "<kernel release>|<QEMU version>" (vdsmlib.pipeline.base._probe)
    here = [accel for key, (accel, _) in probes.items() if key.split("|")[0] == platform.release()]
    return bool(here) and all(accel == "kvm" for accel in here)


def run_fingerprint(out_dir: Path | str, dsm_version: str, name: str) -> tuple[str, str] | None:
    """(run id, fingerprint of checkpoint ``name``) of the newest run in ``out_dir`` (this
    checkout's builds) for ``dsm_version`` that reckoned one, or None."""
    runs = sorted(
        (p for p in Path(out_dir).glob("*/state.json") if not p.parent.is_symlink()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for path in runs:
        try:
            state = RunState.load(path.parent)
        except (OSError, ValueError, TypeError):
            continue
        if state.dsm_version == dsm_version and state.fingerprints.get(name):
            return path.parent.name, state.fingerprints[name]
    return None


def check_before_restore(
    client: docker.DockerClient, image: str, name: str, *, run_id: str | None = None
) -> str:
    """The build's checks before a restore (:func:`vdsmlib.checkpoints.check.check_checkpoint`:
    the image a build committed, no copy, sound disks and its state file). A checkpoint that
    fails them is marked bad as the build marks it (untagged, so no build resumes from it) and
    refused with the build's one line; returns the line of one that passes."""
    from vdsmlib.checkpoints.check import check_checkpoint, mark_bad
    from vdsmlib.pipeline.stage import checkpoint_records

    result = check_checkpoint(client, image, name, records=checkpoint_records(), run_id=run_id)
    if result.ok:
        log.info("%s", result.line())
        return result.line()
    removed = mark_bad(client, result)
    raise VdsmError(
        f"{result.line()}; marked bad: untagged {', '.join(removed) or 'nothing'} (not restored: "
        "explore again to restore an earlier one, or build again, which falls back from it)"
    )


def restore_checkpoint(
    client: docker.DockerClient,
    params: Params,
    name: str,
    *,
    keep: bool = True,
    fingerprint: str | None = None,
) -> StageVm:
    """Start checkpoint ``name`` with ``-incoming file:/storage/<name>.state`` (with
    ``fingerprint``, that one; else the newest), once it passed the build's checks
    (:func:`check_before_restore`); the VM stays until closed."""
    image, accelerator = find_checkpoint(client, params, name, fingerprint)
    run_id = new_run_id()
    check_before_restore(client, image, name, run_id=run_id)
    return StageVm.start(
        client,
        image,
        params,
        accelerator=accelerator,
        run_id=run_id,
        stage=f"explore-{name}",
        restore=name,
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


def out_folders(out_dir: Path | str) -> list[Path]:
    """Where ``out_dir`` may be, absolute: as given (relative to the working directory), then
    relative to the project directory (a kernel's working directory is its notebook's folder,
    not where ``make`` ran)."""
    from vdsmlib.project import ProjectError, project_dir

    path = Path(out_dir).expanduser()
    folders = [path.resolve()]
    if not path.is_absolute():
        with contextlib.suppress(ProjectError):
            folders.append((project_dir() / path).resolve())
    return list(dict.fromkeys(folders))


def last_failed_run(out_dir: Path | str = "out") -> Path:
    """The run folder of the newest failed build in ``out_dir`` (see :func:`out_folders`)."""
    failed: list[tuple[float, Path]] = []
    folders = out_folders(out_dir)
    for path in (p for folder in folders for p in folder.glob("*/result.json")):
        try:
            record = load_record(path)
        except (OSError, ValueError, TypeError):
            continue
        if record.status == "failed":
            failed.append((record.started_at, path.parent))
    if not failed:
        where = " or ".join(str(f) for f in folders)
        raise VdsmError(f"no failed build in {where}: pass run_dir=<the run folder to explore>")
    return max(failed)[1].resolve()


def _failed_stage(record: BuildRecord) -> str:
    if record.failure and record.failure.get("stage"):
        return str(record.failure["stage"])
    for stage in record.stages:
        if stage.status == "failed":
            return stage.name
    raise VdsmError(f"run {record.run_id} has no failed stage (status {record.status})")


@dataclass
class Explorer:
    """A failed run's checkpoint restored and its wizard stopped at the screen that failed."""

    run_dir: Path
    params: Params
    stage: str  # the wizard stage (profile file name): admin | post-wizard | services-ui
    vm: StageVm
    session: BrowserSession
    wizard: Wizard
    values: dict[str, str]
    profile_dirs: list[Path]
    #: the error the stage stopped at (its screenshot, suggestion and files), if it did
    failure: UnknownScreenError | None = None
    handled: list[str] = field(default_factory=list)

    @classmethod
    async def open(
        cls,
        run_dir: Path | str | None = None,
        *,
        out_dir: Path | str = "out",
        profile_dirs: list[Path] | None = None,
        client: docker.DockerClient | None = None,
        to_failure: bool = True,
    ) -> Explorer:
        """Restore ``run_dir``'s checkpoint, replay the stages before the failing one, and step
        (with ``to_failure``) until the screen that failed.

        ``profile_dirs``: where profiles are read and the suggestion goes (default: the run's).
        """
        from vdsmlib.docker.engine import connect
        from vdsmlib.notebook.steps import resolve_run_dir

        folder = resolve_run_dir(run_dir) if run_dir else last_failed_run(out_dir)
        record = load_record(folder / "result.json")
        failed = _failed_stage(record)
        if failed not in WIZARD_STAGES:
            raise VdsmError(
                f"run {record.run_id} failed in stage {failed}, which has no wizard screen after "
                "a checkpoint to explore (admin, post-wizard and services have)"
            )
        state = RunState.load(folder)
        params = load_params(
            state.dsm_version,
            state.overrides,
            params_dir=Path(state.params_dir) if state.params_dir else None,
        )
        client = client or connect()
        fingerprint = state.fingerprints.get("start-ready")
        image, accelerator = find_checkpoint(client, params, "start-ready", fingerprint)
        log.info("run %s failed in %s: restoring %s", record.run_id, failed, image)
        run_id = new_run_id()
        check_before_restore(client, image, "start-ready", run_id=run_id)
        vm = StageVm.start(
            client,
            image,
            params,
            accelerator=accelerator,
            run_id=run_id,
            stage=f"explore-{failed}",
            restore="start-ready",
            keep=True,
        )
        session: BrowserSession | None = None
        try:
            await vm.wait_api(params.timeouts.restore)
            evidence = Path(tempfile.mkdtemp(prefix="explore-", dir=folder))
            session = await BrowserSession(evidence, record_video=False).start()
            dirs = profile_dirs or [Path(d) for d in params.profile_dirs]
            values = {
                "server_name": params.admin.server_name,
                "admin_user": params.admin.user,
                "admin_password": params.admin.password,
            }
            order = list(WIZARD_STAGES)
            for earlier in order[: order.index(failed)]:
                wizard_stage = WIZARD_STAGES[earlier]
                if wizard_stage == "services-ui" or earlier == failed:
                    continue
                log.info("replaying stage %s", wizard_stage)
                profile = load_stage_profile(params.profile, wizard_stage, search=dirs)
                await run_wizard_stage(
                    session, profile, values, vm.url, credentials=_credentials(params, earlier)
                )
            stage = WIZARD_STAGES[failed]
            page = await session.open_stage(stage, vm.url, credentials=_credentials(params, failed))
            profile = load_stage_profile(params.profile, stage, search=dirs)
            wizard = Wizard(page, profile, values, evidence, base_url=vm.url)
        except BaseException:
            if session is not None:
                await session.close()
            vm.container.keep = False
            vm.close()
            raise
        explorer = cls(folder, params, stage, vm, session, wizard, values, dirs)
        if to_failure:
            await explorer.to_failure()
        return explorer

    @property
    def url(self) -> str:
        return self.vm.url

    @property
    def profile(self) -> StageProfile:
        return self.wizard.profile

    async def to_failure(self, max_steps: int = 30) -> UnknownScreenError | None:
        """Step until a screen no profile entry knows shows (returned) or the stage is done."""
        for _ in range(max_steps):
            try:
                record = await self.step()
            except UnknownScreenError as err:
                self.failure = err
                log.info("stopped at the unknown screen: %s", err.screenshot)
                return err
            if record is None:
                log.info("stage %s is done: the screen that failed did not show", self.stage)
                return None
        return None

    async def step(self) -> ScreenRecord | None:
        """Wait for the next known screen as the build does and perform it (None: done)."""
        record = await self.wizard.step()
        if record is not None:
            self.handled.append(record.screen)
        return record

    async def detect(self) -> Screen | None:
        return await self.wizard.detect()

    async def perform(self, screen_id: str | None = None) -> ScreenRecord:
        """Perform ``screen_id`` (default: the known screen showing now)."""
        if screen_id is None:
            screen = await self.detect()
            if screen is None:
                raise VdsmError("no known screen shows now: insert the suggestion, or step")
            screen_id = screen.id
        record = await self.wizard.perform(screen_id)
        self.handled.append(record.screen)
        return record

    async def screenshot(self, name: str = "now") -> Path:
        return await self.wizard.screenshot(name)

    async def try_locator(self, selector: str) -> LocatorReport:
        return await self.wizard.try_locator(selector)

    def profile_file(self) -> Path:
        """The stage file the profile reads first (the profile's own, not an inherited one)."""
        if not self.profile.files:
            raise VdsmError(f"profile {self.profile.profile} has no file for stage {self.stage}")
        return Path(self.profile.files[0])

    def reload_profile(self) -> StageProfile:
        """Read the stage's profile again (validated); the page and the VM stay."""
        profile = load_stage_profile(self.params.profile, self.stage, search=self.profile_dirs)
        wizard = Wizard(self.wizard.page, profile, self.values, self.wizard.evidence,
                        base_url=self.vm.url)  # fmt: skip
        wizard._shots = self.wizard._shots
        self.wizard = wizard
        return profile

    def insert_suggestion(self, suggestion: str | None = None) -> str:
        """Insert the suggested entry (default: the failure's) into :meth:`profile_file`,
        reload the profile, and return the new screen's id."""
        if suggestion is None:
            if self.failure is None:
                raise VdsmError("no unknown screen here to take a suggestion from: pass one")
            suggestion = self.failure.suggestion_yaml
        screen_id = insert_entry(self.profile_file(), suggestion)
        self.reload_profile()
        log.info("inserted screen %s into %s", screen_id, self.profile_file())
        return screen_id

    async def close(self) -> None:
        """Close the browser and remove the VM."""
        await self.session.close()
        self.vm.container.keep = False
        self.vm.close()

    async def resume(self, **build_args: Any) -> BuildRecord:
        """Close, then build the run's target again with its params (resumes from a checkpoint)."""
        from vdsmlib.pipeline.parameters import build_from_parameters

        await self.close()
        state = RunState.load(self.run_dir)
        values = {"dsm_version": state.dsm_version, "out_dir": str(self.run_dir.parent)}
        build = build_from_parameters(
            {**values, **build_args}, overrides=state.overrides, params_dir=state.params_dir
        )
        return await build.run()


def _credentials(params: Params, build_stage: str) -> Credentials | None:
    # Before the admin account exists there is no login page to pass (as the build does).
    if build_stage in ("boot", "admin"):
        return None
    return Credentials(params.admin.user, params.admin.password)
