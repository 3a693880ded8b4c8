"""The cells of a stage notebook: the stage's steps, one call per cell, with their evidence.

The build runs every stage notebook headless (papermill), cell by cell; a person opens the same
notebook in JupyterLab on a run folder and runs it one cell at a time. Each method is one step
of the stage's own code (:mod:`vdsmlib.pipeline.configure`: the same functions the build's
stage function composes, so the checkpoint fingerprints cover them), shows what it did, and on
failure shows the failed stage's evidence (screenshot, visible text, suggested profile entry)
before the error. Example (``notebooks/post-wizard.ipynb``)::

    nb = StageNotebook(run_dir, "post-wizard")
    await nb.restore_vm()       # reattach the build's VM, or restore start-ready (and replay)
    await nb.open_browser()     # the stage's page and its screenshot
    await nb.step()             # stepping: perform the screen showing now; run again for the next
    await nb.to_failure()       # a failed run: step to the screen that failed
    await nb.screens()          # every remaining screen until the stage is done (the build)
    await nb.close_browser()    # each screen's screenshot beside its clip
    nb.finish()                 # stages/<stage>.json for the build, the outcome

Run outside a build (a finished or failed run's folder), a stage restores ``start-ready`` and
replays the wizard stages before it; it takes no checkpoint (a re-run never moves a tag) and
:meth:`finish` removes its VM.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from vdsmlib.docker import labels as L
from vdsmlib.errors import VdsmError
from vdsmlib.evidence.record import failure_evidence, first_line
from vdsmlib.notebook.display import (
    _markdown,
    log_to_output,
    show_evidence,
    show_failure,
    show_image,
    show_outcome,
    show_screens,
)
from vdsmlib.pipeline.configure import apply_services, checkpoint_final, restore_vm
from vdsmlib.pipeline.context import StageContext
from vdsmlib.pipeline.stage import StageOutcome, WizardSteps
from vdsmlib.wizard import ScreenRecord, UnknownScreenError

__all__ = ["StageNotebook", "resolve_run_dir"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def resolve_run_dir(run_dir: str | os.PathLike[str], *, base: Path | None = None) -> Path:
    """``run_dir`` as an absolute folder: as given, else relative to ``base`` (the project
    directory: a kernel's working directory is its notebook's folder, not where ``make`` ran).
    Raises a one-line error naming the folders it looked in."""
    from vdsmlib.project import ProjectError, project_dir

    path = Path(run_dir).expanduser()
    if not str(run_dir):
        raise VdsmError("run_dir is empty: pass the run folder, e.g. -p run_dir out/latest")
    candidates = [path.resolve()]
    if not path.is_absolute():
        with suppress(ProjectError):
            candidates.append(((base or project_dir()) / path).resolve())
    for candidate in candidates:
        if (candidate / "state.json").is_file():
            return candidate
    looked = " or ".join(str(c) for c in dict.fromkeys(candidates))
    raise VdsmError(f"no run folder (with state.json) at {looked}: pass run_dir=out/<run-id>")


class StageNotebook:
    """One stage of a run folder, step by step (see the module's docstring)."""

    def __init__(self, run_dir: str | os.PathLike[str], stage: str) -> None:
        log_to_output()
        self.run_dir = resolve_run_dir(run_dir)
        self.stage = stage
        self.ctx = StageContext(self.run_dir)
        self.outcome = StageOutcome()
        self.vm: Any = None
        self.wizard: WizardSteps | None = None
        self.failure: UnknownScreenError | None = None
        #: a build runs this notebook (its process label is in the environment): else the
        #: stage runs on its own on a finished run's folder
        self.in_build = bool(os.environ.get(L.PROCESS_ENV))
        if not self.in_build:
            self._forget_build_resources()

    def _forget_build_resources(self) -> None:
        """Outside a build the run's network and VM are gone (the build removed them)."""
        state = self.ctx.state
        if state.network and not self._network_exists(state.network):
            state.network = None
        if state.container_id:
            try:
                self.ctx.client.containers.get(state.container_id)
            except Exception:  # docker.errors.NotFound: nothing to reattach
                state.container_id = None

    def _network_exists(self, name: str) -> bool:
        try:
            self.ctx.client.networks.get(name)
        except Exception:  # docker.errors.NotFound
            return False
        return True

    @property
    def notebook_dir(self) -> Path:
        return self.run_dir / "notebooks"

    @contextmanager
    def _evidence_on_failure(self) -> Iterator[None]:
        """On an error: the failed stage's evidence in the cell's output, then the error."""
        try:
            yield
        except Exception as err:
            failure = failure_evidence(self.run_dir, self.stage)
            failure["error"] = f"{type(err).__name__}: {first_line(str(err))}"
            failure["files"] = [f for f in failure["files"] if f != failure.get("notebook")]
            show_failure(self.run_dir, failure, notebook_dir=self.notebook_dir, embed_screens=True)
            raise

    async def _step(self, work: Callable[[], Awaitable[T]]) -> T:
        with self._evidence_on_failure():
            return await work()

    def _steps(self) -> WizardSteps:
        if self.wizard is None:
            raise VdsmError("the browser is not open: run the cell `await nb.open_browser()`")
        return self.wizard

    async def restore_vm(self) -> str:
        """The VM the stage starts from: the build's, or ``start-ready`` restored (and the
        stages before this one replayed). Returns its URL."""

        async def work() -> Any:
            return await restore_vm(self.ctx, self.stage, self.outcome)

        self.vm = await self._step(work)
        replayed = self.outcome.facts.get("replayed")
        line = f"DSM at {self.vm.url} (login {self.ctx.params.admin.user})"
        if replayed:
            line += f"; replayed {', '.join(replayed)} from start-ready"
        _markdown(html.escape(line), line)
        return str(self.vm.url)

    async def open_browser(self, wizard_stage: str | None = None) -> None:
        """Start the browser on the stage's page (``wizard_stage``: the profile, default the
        stage's own) and show it."""
        if self.vm is None:
            raise VdsmError("no VM yet: run the cell `await nb.restore_vm()` first")
        steps = WizardSteps(self.ctx, wizard_stage or self.stage, self.vm, self.outcome)

        async def work() -> Path:
            await steps.open()
            # not one of the stage's numbered screenshots (the evidence of its screens)
            shot = steps.session.evidence / f"{steps.stage}.page.png"
            try:
                if steps.wizard is not None:
                    await steps.wizard.page.screenshot(path=str(shot))
            except Exception as err:  # a picture for the person, not the stage's evidence
                log.warning("stage %s: no screenshot of the page: %s", steps.stage, err)
            return shot

        shot = await self._step(work)
        self.wizard = steps
        show_image(shot, f"{steps.stage}: the page now ({steps.profile_file()})")

    async def step(self) -> ScreenRecord | None:
        """Perform the known screen showing now and show its screenshot (None: the stage is
        done). An unknown screen shows its diagnosis and raises; :meth:`insert_suggestion`,
        then step again."""
        steps = self._steps()
        try:
            record = await steps.step()
        except UnknownScreenError as err:
            self.failure = err
            if err.screenshot is not None:
                show_image(err.screenshot, f"{steps.stage}: a screen no profile entry knows")
            _markdown(
                f"Suggested entry (`nb.insert_suggestion()` puts it into "
                f"`{steps.profile_file()}`):\n\n```yaml\n{err.suggestion_yaml.strip()}\n```",
                f"suggested entry for {steps.profile_file()}",
            )
            raise
        if record is None:
            _markdown(f"stage {steps.stage} is done", f"stage {steps.stage} is done")
            return None
        if record.screenshot is not None:
            show_image(record.screenshot, f"{steps.stage}: {record.screen} (performed)")
        return record

    async def to_failure(self, max_steps: int = 30) -> UnknownScreenError | None:
        """Step (each screen shown) until a screen no profile entry knows: its diagnosis is
        shown and it is returned, the page kept open; None when the stage got done."""
        for _ in range(max_steps):
            try:
                record = await self.step()
            except UnknownScreenError as err:
                return err
            if record is None:
                return None
        return None

    def insert_suggestion(self, suggestion: str | None = None) -> str:
        """Insert the suggested entry (default: the unknown screen's) into the stage's profile
        file and reload it; returns the screen id."""
        steps = self._steps()
        if suggestion is None:
            if self.failure is None:
                raise VdsmError("no unknown screen here to take a suggestion from: pass one")
            suggestion = self.failure.suggestion_yaml
        screen_id = steps.insert_suggestion(suggestion)
        line = f"inserted screen {screen_id} into {steps.profile_file()} and reloaded it"
        _markdown(html.escape(line), line)
        return screen_id

    async def screens(self) -> None:
        """Every remaining screen until the stage is done (what the build runs headless)."""
        steps = self._steps()
        await self._step(steps.run)

    async def close_browser(self) -> None:
        """Close the stage's page and the browser; each screen's screenshot beside its clip."""
        steps = self._steps()
        report = await self._step(steps.close)
        entries = [e for e in self.outcome.screens if e.get("stage") == report.stage]
        show_screens(self.run_dir, entries, notebook_dir=self.notebook_dir)
        if report.video is not None:  # the whole stage video, linked (not embedded)
            show_evidence(videos=[report.video], notebook_dir=self.notebook_dir)

    async def apply_services(self) -> None:
        """The desired services through the Web API, verified, and the build file written."""
        await self._step(lambda: apply_services(self.ctx, self.vm, self.outcome))
        changed = ", ".join(self.outcome.facts.get("services_changed", [])) or "no changes"
        _markdown(f"services applied and verified: {html.escape(changed)}")

    async def checkpoint(self) -> None:
        """Migrate into ``/storage/final.state``, read back, commit. Outside a build: not
        taken (a stage re-run never moves a tag); the VM is removed by :meth:`finish`."""
        if not self.in_build:
            line = "checkpoint final not taken: this stage runs outside a build"
            self.outcome.detail = (self.outcome.detail + " " + line).strip()
            _markdown(line)
            return
        await self._step(lambda: checkpoint_final(self.ctx, self.vm, self.outcome))
        self.vm = None

    def finish(self) -> StageOutcome:
        """Record the outcome (``stages/<stage>.json``, what the build reads) and show it;
        outside a build, remove the VM."""
        self.outcome.write(self.run_dir, self.stage)
        show_outcome(
            StageOutcome(self.outcome.status, self.outcome.detail, facts=self.outcome.facts)
        )
        if not self.in_build:
            self.close()
        return self.outcome

    async def resume(self) -> str:
        """Outside a build: close the browser and the VM, then build the run's target again
        (it resumes from the newest checkpoint whose fingerprint still matches: an edited
        profile changes the ones after ``start-ready``). The stage lines stream into this
        cell's output; the new run folder has its executed notebooks, record and report.
        Returns the image; a failed build raises its one line."""
        from vdsmlib.notebook.display import finish, run_build, show_build_evidence
        from vdsmlib.pipeline.parameters import build_from_parameters

        if self.in_build:
            raise VdsmError("this notebook runs inside a build: the build goes on by itself")
        if self.wizard is not None:
            await self.wizard.close(failed=True)
        self.close()
        state = self.ctx.state
        values = {"dsm_version": state.dsm_version, "out_dir": str(self.run_dir.parent)}
        build = build_from_parameters(
            {**values, "executor": "notebook"},
            overrides=state.overrides,
            params_dir=state.params_dir,
        )
        line = f"resuming: new run folder {build.run_dir}"
        _markdown(html.escape(line), line)
        result = await run_build(build)
        show_build_evidence(build, result)
        return finish(build, result)

    def close(self) -> None:
        """Remove the VM this notebook restored (a build's VM: the build removes it)."""
        if self.vm is None:
            return
        self.vm.container.keep = False
        self.vm.close()
        self.vm = None
        self.ctx.state.container_id = None
        self.ctx.save()
