"""The build orchestrator: validate, prepare, plan, run the stages, record, clean up.

Example (in a notebook cell, or ``asyncio.run`` elsewhere)::

    record = await Build("sim", {"admin_password": "S3cure-Passw0rd"}).run()
    record.image        # 'ghcr.io/vdsm-ci/vdsm-configured:sim-72806-tcg-1a2b3c4d'

Stages run through an *executor*, a small registry like papermill's engines: ``inline`` calls
the stage functions in this process; ``notebook`` executes ``notebooks/<stage>.ipynb`` with
papermill, leaving one executed notebook per stage as evidence.

:meth:`Build.work_to_do` says what a build would do, making nothing: prepare's look-up
(:func:`~vdsmlib.pipeline.base.look_up_base`), the fingerprints, then the plan; None is a no-op.
``await Build(...).run_if_noop()`` runs the build only then: what ``make build`` asks before it
starts the build notebook's kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import docker

from vdsmlib.checkpoints.cache import checkpoint_tag, pull_checkpoint, push_checkpoint
from vdsmlib.checkpoints.check import (
    CheckpointCheck,
    CommittedCheckpoint,
    check_checkpoint,
    clear_restore_failures,
    mark_bad,
    record_committed,
    restore_failures,
)
from vdsmlib.checkpoints.fingerprints import compute as compute_fingerprints
from vdsmlib.checkpoints.vm import QMP_DIR_IN_CONTAINER
from vdsmlib.docker import labels as L
from vdsmlib.docker.engine import connect
from vdsmlib.docker.images import clean, find_images, get_image
from vdsmlib.docker.network import build_network, network_name, remove_network
from vdsmlib.errors import VdsmError
from vdsmlib.evidence.record import BuildRecord, first_line
from vdsmlib.evidence.report import write_report
from vdsmlib.params import Params, check_bool, load_params
from vdsmlib.pipeline import janitor
from vdsmlib.pipeline.base import cache_dir, look_up_base
from vdsmlib.pipeline.context import RunState, StageContext, new_run_id
from vdsmlib.pipeline.flatten import final_tags
from vdsmlib.pipeline.plan import CHECKPOINT_AFTER, STAGES, Plan, make_plan, plan_with_checks
from vdsmlib.pipeline.preflight import preflight
from vdsmlib.pipeline.publish import trust_pulled
from vdsmlib.pipeline.stage import checkpoint_records
from vdsmlib.pipeline.stages import STAGE_FUNCTIONS, StageOutcome
from vdsmlib.pipeline.trust import trusted_final
from vdsmlib.project import notebooks_dir
from vdsmlib.project import params_dir as project_params_dir
from vdsmlib.wizard.secrets import forget_run_cookies

__all__ = [
    "EXECUTORS",
    "Build",
    "StageError",
    "cancel_on_sigterm",
    "describe_os_error",
    "kernel_config",
    "note_signal",
]

log = logging.getLogger(__name__)

_RESERVE_BYTES = 1 << 20

# Signals received by this process (the CLI notes SIGTERM before turning it into a SIGINT), so a
# cancelled build records why it ended.
_SIGNALS: list[str] = []


def note_signal(signum: int) -> None:
    """Remember that ``signum`` ended the build (recorded in ``result.json``)."""
    _SIGNALS.append(signal.Signals(signum).name)


# The builds running in this process, so that a SIGTERM can cancel them (see cancel_on_sigterm).
_RUNNING: set[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = set()
#: the process label this module put in the environment for the builds running now
_LABEL_SET_HERE: str | None = None


def cancel_on_sigterm() -> None:
    """Let SIGTERM cancel the builds running in this process, as Ctrl-C does (for kernels).

    A notebook kernel runs ``await build.run()`` on its own loop, where a SIGTERM would end the
    process with the build's containers left running; with this handler the build is cancelled,
    cleans up and records ``failed`` with the reason. With no build running, SIGTERM ends the
    process as usual. Call it from the main thread.
    """

    def on_sigterm(signum: int, frame: object) -> None:
        running = list(_RUNNING)
        if not running:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        note_signal(signum)
        for loop, task in running:
            loop.call_soon_threadsafe(task.cancel)

    signal.signal(signal.SIGTERM, on_sigterm)


def _how_interrupted() -> str:
    """What stopped the build: the signal noted, else Ctrl-C (asyncio turns SIGINT into a
    cancellation, as a caller cancelling the task does)."""
    if _SIGNALS:
        return f"terminated by {_SIGNALS[-1]}"
    return "interrupted (SIGINT: Ctrl-C, or the build's task was cancelled)"


def _interruption(stage: str | None) -> str:
    where = f"stage {stage}: " if stage else ""
    if _SIGNALS:
        return f"{where}{_how_interrupted()}: the build was cancelled; its containers were removed"
    return f"{where}{_how_interrupted()}: the build's containers were removed"


def is_file_error(err: BaseException) -> TypeGuard[OSError]:
    """An error of the file system (disk full, permission, read-only), not of a connection
    (requests' and docker's errors are OSErrors too, without an errno)."""
    return (
        isinstance(err, OSError) and err.errno is not None and not isinstance(err, ConnectionError)
    )


def describe_os_error(err: OSError, folders: Sequence[Path] = ()) -> str:
    """One line: which path, what went wrong, what to do.

    A failed ``write()`` names no file: then the fullest of ``folders`` (the run folder, the
    temporary folder) is named, the one a full disk most likely is.
    """
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free space there, or choose another out_dir (--out)"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "make it writable, or choose another out_dir (--out)"
    else:
        hint = "check that path (disk, permissions), then run the build again"
    path = err.filename
    if not path and folders:
        path = min(folders, key=_free_bytes)
    where = f"{path}: " if path else ""
    return f"{where}{reason}: {hint}"


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62


class StageError(VdsmError):
    """A build stage failed. ``stage`` names it; the cause is chained."""

    def __init__(self, stage: str, message: str):
        super().__init__(f"stage {stage} failed: {message}")
        self.stage = stage


class Executor(Protocol):
    async def __call__(self, run_dir: Path, stage: str) -> StageOutcome: ...


async def inline_executor(run_dir: Path, stage: str) -> StageOutcome:
    ctx = StageContext(run_dir)
    outcome = await STAGE_FUNCTIONS[stage](ctx)
    outcome.write(run_dir, stage)
    return outcome


def kernel_config() -> Any:
    """The traitlets config papermill's kernels start with (``execute_notebook(config=...)``).

    The kernel manager provisions CurveZMQ keys for kernels whose kernelspec supports them
    (ipykernel's does), so a kernel does not run "over TCP without encryption" (and does not
    warn so in every build log).
    """
    from traitlets.config import Config

    return Config(
        {
            "KernelManager": {"transport_encryption": "auto"},
            # no "KeyboardInterrupt caught in kernel" line when a finished kernel shuts down
            "NotebookClient": {
                "kernel_manager_class": "vdsmlib.pipeline.kernels.QuietShutdownKernelManager"
            },
        }
    )


async def notebook_executor(run_dir: Path, stage: str) -> StageOutcome:
    import papermill

    output = run_dir / "notebooks" / f"{stage}.ipynb"
    output.parent.mkdir(exist_ok=True)
    notebooks = notebooks_dir()
    try:
        # papermill runs its own event loop: keep it off ours.
        await asyncio.to_thread(
            papermill.execute_notebook,
            str(notebooks / f"{stage}.ipynb"),
            str(output),
            parameters={"run_dir": str(run_dir)},
            cwd=str(notebooks),
            progress_bar=False,
            kernel_name="python3",
            config=kernel_config(),
        )
    except papermill.PapermillExecutionError as err:
        # One line: the stage notebook holds the traceback and the whole diagnosis.
        raise VdsmError(
            f"{err.ename}: {first_line(err.evalue, 2000)} (executed notebook: {output})"
        ) from None
    outcome = StageOutcome.read(run_dir, stage)
    if outcome is None:
        raise VdsmError(f"{output} ran but recorded no outcome (did it call run_stage?)")
    return outcome


EXECUTORS: dict[str, Executor] = {"inline": inline_executor, "notebook": notebook_executor}


class Build:
    """One build of one target; ``await run()`` returns the :class:`BuildRecord`."""

    def __init__(
        self,
        dsm_version: object = "sim",
        overrides: Mapping[str, Any] | None = None,
        *,
        out_dir: Path | str = "out",
        no_cache: bool = False,
        from_checkpoint: str | None = None,
        keep: bool = False,
        executor: str = "inline",
        run_id: str | None = None,
        client: docker.DockerClient | None = None,
        params_dir: Path | str | None = None,
    ):
        # Validated before anything starts: a weak password never reaches a container.
        self.params_dir = Path(params_dir).resolve() if params_dir else project_params_dir()
        self.params: Params = load_params(dsm_version, overrides, params_dir=self.params_dir)
        self.overrides = dict(overrides or {})
        self.no_cache = check_bool("no_cache", no_cache)
        check_bool("keep", keep)
        self.from_checkpoint = from_checkpoint or None
        self.keep = keep
        if executor not in EXECUTORS:
            raise VdsmError(f"unknown executor {executor!r} (known: {', '.join(EXECUTORS)})")
        self.executor = EXECUTORS[executor]
        self.run_id = run_id or new_run_id()
        self.run_dir = (Path(out_dir) / self.run_id).resolve()
        self._client = client
        self._janitor: subprocess.Popen[bytes] | None = None
        #: after run_if_noop() found work: what (the plan's reason, or what prepare would make)
        self.work: str | None = None
        #: stage -> why it runs although the first plan resumed it (its checkpoint was refused)
        self._fell_back: dict[str, str] = {}
        self.record = BuildRecord(
            run_id=self.run_id,
            target=self.params.target,
            dsm_version=self.params.dsm_version,
            dsm_release=self.params.dsm_release,
            admin_user=self.params.admin.user,
            params=self.params.public_dict(),
        )

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    def lock_path(self) -> Path:
        """The lock builds of the same parameters share (``<cache>/locks/<target>-<hash>.lock``).

        Keyed by every parameter that shapes the image (the password only through a hash), so
        two builds that would make the same image run one after the other: the second finds the
        base, checkpoints and final image made and does nothing twice.
        """
        # not where the profiles were found: two checkouts building one image share the lock
        shaping = self.params.model_dump(mode="json", exclude={"profile_dirs"})
        data = json.dumps(shaping, sort_keys=True)
        key = hashlib.sha256(data.encode()).hexdigest()[:16]
        return cache_dir() / "locks" / f"{self.params.dsm_version}-{key}.lock"

    async def _lock(self) -> int:
        """Take the build lock (waiting, cancellably, while another build holds it)."""
        path = self.lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "?"
                    log.info("waiting for another build of the same image (%s): %s", holder, path)
                    waited = True
                try:
                    await asyncio.sleep(1.0)
                except BaseException:
                    os.close(fd)
                    raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{L.process_label()} {self.run_id}\n".encode(), 0)
        return fd

    def work_to_do(self) -> str | None:
        """What this build would do, or None when it is a no-op; makes nothing.

        A plain function of what is there: prepare's look-up (the upstream image, PAT, build
        base, QEMU version and accelerator probe result, each as the build would reuse it), the
        fingerprints computed from it, and the plan over the images on this engine. A pull from
        the checkpoint cache is work too. A final image pulled from a registry is trusted here
        as in the build, by the record beside its tag (read, not kept; the smoke record it
        carries is written to this user's cache). Example::

            build = Build("sim")
            print(build.work_to_do() or "nothing to do")
        """
        if self.from_checkpoint:
            return f"from_checkpoint={self.from_checkpoint}: resume from it"
        found = look_up_base(self.client, self.params)
        if isinstance(found, str):
            return found
        fingerprints = compute_fingerprints(self.params, found)
        # a pulled final image is trusted by the record its publication pushed beside it
        pulled = trust_pulled(self.client, fingerprints["image"])
        final = trusted_final(self.client, fingerprints["image"])
        # the plan the build would make (its checks of the checkpoint run in the build)
        plan = make_plan(
            final_image_exists=final.image is not None,
            checkpoints={name: True for name in self._tagged_checkpoints(fingerprints)},
            no_cache=self.no_cache,
            from_checkpoint=self.from_checkpoint,
        )
        if not plan.to_run():
            return None
        return "; ".join([plan.reason, *filter(None, [final.note(), *pulled])])

    async def run_if_noop(self) -> BuildRecord | None:
        """The no-op build's record when :meth:`work_to_do` finds nothing to do, else None.

        A no-op writes what run()'s no-op writes (``result.json`` with ``image_run_id``,
        ``report.html``; ``out/latest`` stays); with work to do nothing is written and
        :attr:`work` says what it is, for :meth:`run` (a new Build) to do. Example::

            record = await Build("sim").run_if_noop()
            if record is None:
                record = await Build("sim").run()
        """
        self.work = await asyncio.to_thread(self.work_to_do)
        if self.work is not None:
            log.info("work to do: %s", self.work)
            return None
        return await self.run()

    async def run(self) -> BuildRecord:
        started = time.monotonic()
        preflight(self.params, self.client, self.run_dir.parent)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # stage notebooks' kernels label what they create with this process: it is the build.
        # Only while it runs: a kernel started later by this process (a notebook run on its
        # own, JupyterLab) is not in a build and must not reattach to this build's VM.
        global _LABEL_SET_HERE
        if not os.environ.get(L.PROCESS_ENV):  # unset, or set empty
            os.environ[L.PROCESS_ENV] = _LABEL_SET_HERE = L.process_label()
        task = asyncio.current_task()
        running = (asyncio.get_running_loop(), task) if task is not None else None
        if running:
            _RUNNING.add(running)
        try:
            lock = await self._lock()
            try:
                return await self._run_locked(started)
            finally:
                os.close(lock)  # releases the flock
        finally:
            if running:
                _RUNNING.discard(running)
            ours = _LABEL_SET_HERE is not None and os.environ.get(L.PROCESS_ENV) == _LABEL_SET_HERE
            if ours and not _RUNNING:
                del os.environ[L.PROCESS_ENV]
                _LABEL_SET_HERE = None

    async def _run_locked(self, started: float) -> BuildRecord:
        # room for the last result.json when the disk fills up during the build
        reserve = self.run_dir / ".reserve"
        reserve.write_bytes(bytes(_RESERVE_BYTES))
        RunState(
            run_id=self.run_id,
            dsm_version=self.params.dsm_version,
            # the password itself, also one given as VDSM_ADMIN_PASSWORD: stage kernels, a
            # stage's step notebook and a resume read it from this 0600 file, never a notebook
            overrides={**self.overrides, "admin_password": self.params.admin.password},
            params_dir=str(self.params_dir),
            keep=self.keep,
        ).save(self.run_dir)
        for name in STAGES:
            self.record.stage(name)
        self.record.write(self.run_dir, latest=False)
        try:
            # in this process: a no-op build (found after prepare) starts no stage kernel
            await self._run_stage("prepare", forced=True, executor=inline_executor)
            plan = self._plan()
            self.record.plan = plan.reason
            log.info("plan: %s", plan.reason)
            self._apply_plan(plan)
            if plan.to_run():
                if not self.keep:
                    # cleans up if this process ends without finishing (SIGKILL, os._exit)
                    self._janitor = janitor.spawn(self.run_dir, self.run_id)
                # the VMs' own network, made only when a stage will start one
                state = self._state()
                state.network = build_network(self.client, self.run_id)
                state.save(self.run_dir)
            await self._run_plan(plan)
            self._finish_record()
            self.record.status = "ok"
        except BaseException as err:
            self.record.status = "failed"
            if isinstance(err, (KeyboardInterrupt, asyncio.CancelledError)):
                stopped = [x.name for x in self.record.stages if x.status == "interrupted"]
                self.record.error = _interruption(stopped[0] if stopped else None)
            elif is_file_error(err):
                self.record.error = describe_os_error(err, self._folders())
            elif self.record.error is None:
                self.record.error = f"{type(err).__name__}: {err}"
            for entry in self.record.stages:
                if entry.status in ("pending", "running"):
                    entry.status = "not-reached"
                    entry.detail = "the build stopped before this stage"
            raise
        finally:
            self.record.seconds = round(time.monotonic() - started, 2)
            self._cleanup()
            janitor.stop(self._janitor)
            self._janitor = None
            self._finish_run_folder(reserve)
        return self.record

    def _finish_run_folder(self, reserve: Path) -> None:
        # out/latest stays on the run that did something (a no-op names it: image_run_id); a
        # no-op in an out/ without one gets it
        latest = self.run_dir.parent / "latest"
        noop_kept = self.record.image_run_id is not None and latest.exists()
        self._write_record(latest=not noop_kept)
        with contextlib.suppress(OSError):
            reserve.unlink()
        with contextlib.suppress(OSError):
            forget_run_cookies(self.run_dir)  # the browser's saved session, also of a failed run
        try:
            write_report(self.run_dir, self.record)
        except OSError as err:
            log.error("report.html not written: %s", describe_os_error(err))

    def _folders(self) -> list[Path]:
        """Where the build writes: the run folder and the temporary folder."""
        return [self.run_dir, Path(tempfile.gettempdir())]

    def _write_record(self, *, latest: bool = True) -> None:
        """Write result.json; on a full disk make room (the reserve, the previous version) first."""
        try:
            self.record.write(self.run_dir, latest=latest)
        except OSError as err:
            for name in (".reserve", "result.json.tmp", "result.json"):
                with contextlib.suppress(OSError):
                    (self.run_dir / name).unlink()
            try:
                self.record.write(self.run_dir, latest=latest)
            except OSError:
                log.error("result.json not written: %s", describe_os_error(err, [self.run_dir]))

    # -- steps ---------------------------------------------------------------------------------

    async def _run_stage(
        self, stage: str, *, forced: bool = False, executor: Executor | None = None
    ) -> None:
        entry = self.record.stage(stage)
        log.info("stage %s: starting", stage)
        started = time.monotonic()
        entry.status = "running"
        with contextlib.suppress(OSError):
            self.record.write(self.run_dir, latest=False)
        try:
            outcome = await (executor or self.executor)(self.run_dir, stage)
        except BaseException as err:
            seconds = round(time.monotonic() - started, 2)
            if isinstance(err, Exception):
                why = first_line(f"{type(err).__name__}: {err}", 300)
                log.error("stage %s: failed in %.1f s: %s", stage, seconds, why)
            else:
                log.error("stage %s: interrupted after %.1f s", stage, seconds)
            with contextlib.suppress(OSError):
                self.record.fail_stage(self.run_dir, stage, err, seconds)
            if not isinstance(err, Exception):
                entry.status = "interrupted"
                entry.detail = f"{_how_interrupted()} after {seconds:.1f} s"
            if is_file_error(err):
                entry.status = "failed"
                entry.detail = describe_os_error(err, self._folders())
                self.record.error = f"stage {stage}: {entry.detail}"
                raise StageError(stage, entry.detail) from err
            if isinstance(err, Exception):
                raise StageError(stage, str(err)) from err
            raise
        entry.seconds = round(time.monotonic() - started, 2)
        entry.status = outcome.status if forced else "ran"
        entry.detail = outcome.detail
        if stage in self._fell_back:
            entry.detail = f"{self._fell_back[stage]}; {outcome.detail}".rstrip("; ")
        self._collect_evidence(stage, outcome)
        self._push_checkpoint(stage)
        # prepare runs in every build, a no-op too: only a later stage moves out/latest
        self.record.write(self.run_dir, latest=stage != "prepare")
        log.info("stage %s: %s in %.1f s: %s", stage, entry.status, entry.seconds, entry.detail)

    def _tagged_checkpoints(self, fingerprints: dict[str, str]) -> dict[str, str]:
        """Checkpoint name -> the tag of the newest tagged checkpoint with its fingerprint."""
        found: dict[str, str] = {}
        for name in CHECKPOINT_AFTER.values():
            images = find_images(
                self.client,
                {L.KIND: "checkpoint", L.STAGE: name, L.FINGERPRINT: fingerprints[name]},
            )
            tagged = [image for image in images if image.tags]
            if tagged:
                found[name] = tagged[0].tags[0]
        return found

    def _state(self) -> RunState:
        return RunState.load(self.run_dir)

    def _plan(self, *, pull: bool = True) -> Plan:
        state = self._state()
        self.record.accelerator = state.accelerator
        self.record.accelerator_reason = state.accelerator_reason
        self.record.qemu_version = state.qemu_version
        self.record.fingerprint = state.fingerprints.get("image")
        # a pulled final image is trusted by the record its publication pushed beside it
        pulled = trust_pulled(self.client, state.fingerprints["image"])
        if pull:
            self._pull_cached_checkpoints(state)
        found = self._tagged_checkpoints(state.fingerprints)
        # the final image a smoke test passed (by ID), not any image carrying its labels
        trusted = trusted_final(self.client, state.fingerprints["image"])
        final_ok = trusted.image is not None
        try:
            # the checkpoint to resume from is checked first (the image its build committed,
            # sound disks); a refused one is untagged and the plan falls back
            plan = plan_with_checks(
                final_image_exists=final_ok,
                checkpoints=list(found),
                check=lambda name: self._check_checkpoint(name, found[name]),
                no_cache=self.no_cache,
                from_checkpoint=self.from_checkpoint,
            )
        except LookupError as err:
            raise VdsmError(
                f"from_checkpoint: no {err} exists; `vdsm checkpoints` lists what there is"
            ) from err
        except ValueError as err:
            raise VdsmError(f"from_checkpoint: {err}") from err
        plan.reason = "; ".join([plan.reason, *filter(None, [trusted.note(), *pulled])])
        if plan.actions["prepare"] == "skipped":
            self.record.stage("prepare").status = "skipped"
        state.checkpoints = {k: v for k, v in found.items() if k not in plan.refused}
        self._fell_back.update(plan.fell_back)
        if plan.resume_from == "start-ready":
            state.checkpoints.pop("final", None)
        if trusted.image is not None and trusted.record is not None:
            final = trusted.image
            moving = final_tags(self.params, state.accelerator or "tcg", trusted.record.fingerprint)
            # the pinned tag the smoke test's promotion gave it, then the moving one
            state.tags = [trusted.record.tags[0], *moving[1:]]
            state.final_image_id = str(final.id)
            if plan.actions["smoke"] == "skipped":
                self.record.image_run_id = trusted.record.run_id
            # every tag the record will name points at this image (back on it, if a copy was
            # given one): the moving one follows the build even when nothing ran (a knob build
            # has none)
            for tag in state.tags:
                repo, _, name = tag.rpartition(":")
                final.tag(repo, name)
        state.save(self.run_dir)
        return plan

    async def _run_plan(self, plan: Plan) -> None:
        """Run the plan's pending stages. When the checkpoint the build resumed from does not
        restore (QEMU cannot load its state), it is marked bad and the build falls back to the
        checkpoint before it, or a cold boot, in the same run (once per checkpoint)."""
        while True:
            try:
                for stage in STAGES[1:]:
                    if plan.actions[stage] == "pending":
                        await self._run_stage(stage)
                return
            except StageError as err:
                name = plan.resume_from
                failed = restore_failures(self.run_dir)
                if name is None or name not in failed:
                    raise
                plan = self._fall_back_after_restore(plan, name, failed[name], err.stage)

    def _fall_back_after_restore(self, plan: Plan, name: str, why: str, stage: str) -> Plan:
        state = self._state()
        image = state.checkpoints.get(name, "")
        found = get_image(self.client, image) if image else None
        bad = CheckpointCheck(
            name, image, str(found.id) if found else "", [why], "", 0.0, restore_failed=True
        )
        mark_bad(self.client, bad)
        clear_restore_failures(self.run_dir)
        state.checkpoints.pop(name, None)
        state.save(self.run_dir)
        self.record.error = None
        self.record.failure = None
        new = self._plan(pull=False)
        resumed = self._state().checkpoints.get(new.resume_from or "", "")
        to = f"checkpoint {new.resume_from} {resumed}" if new.resume_from else "a cold boot"
        note = f"would have resumed from checkpoint {name}; fell back to {to}: {bad.line()}"
        for entry in self.record.stages:
            if new.actions.get(entry.name) != "pending" or entry.name == "prepare":
                continue
            entry.status, entry.detail = "pending", ""
            if entry.name == stage or plan.actions.get(entry.name) == "resumed":
                self._fell_back[entry.name] = entry.detail = note
        self._apply_plan(new)
        new.reason = f"{new.reason}; fell back to {to}: {bad.line()}"
        # the first plan's reason stays (a checkpoint refused by its check before this one)
        self.record.plan = f"{self.record.plan}; then: {new.reason}"
        log.info("plan: %s", new.reason)
        return new

    def _check_checkpoint(self, name: str, image: str) -> tuple[bool, str]:
        """Check the checkpoint ``name`` (``image``) before it is restored; a refused one is
        marked bad (untagged, one log line)."""
        result = check_checkpoint(
            self.client, image, name, records=checkpoint_records(), run_id=self.run_id
        )
        if result.ok:
            log.info("%s", result.line())
        else:
            mark_bad(self.client, result)
        return result.ok, result.line()

    def _pull_cached_checkpoints(self, state: RunState) -> None:
        """Pull the newest checkpoint with the current fingerprint that this engine lacks."""
        repository = self.params.image.cache_repository
        if not repository or self.no_cache:
            return
        if trusted_final(self.client, state.fingerprints["image"]).image is not None:
            return
        for name in ("final", "start-ready"):
            fingerprint = state.fingerprints[name]
            labels = {L.KIND: "checkpoint", L.STAGE: name, L.FINGERPRINT: fingerprint}
            if find_images(self.client, labels):
                return  # the newest one needed is here already
            tag = checkpoint_tag(
                self.params.dsm_version, state.accelerator or "tcg", name, fingerprint
            )
            transfer = pull_checkpoint(self.client, repository, tag, fingerprint)
            self.record.cache.append(transfer.as_dict())
            if not transfer.error:
                # the image the pushing build committed (accepted: its image ID and digest are
                # the ones recorded beside it in the registry); its disks are still checked
                pulled = self.client.images.get(transfer.reference)
                record_committed(
                    checkpoint_records(),
                    CommittedCheckpoint(
                        image_id=str(pulled.id),
                        name=name,
                        fingerprint=fingerprint,
                        run_id=pulled.labels.get(L.RUN_ID, ""),
                        tag=transfer.reference,
                        source=f"pulled {transfer.reference}",
                    ),
                )
                return

    def _push_checkpoint(self, stage: str) -> None:
        repository = self.params.image.cache_repository
        name = CHECKPOINT_AFTER.get(stage)
        if not repository or name is None:
            return
        image = self._state().checkpoints.get(name)
        if image:
            self.record.cache.append(push_checkpoint(self.client, image, repository).as_dict())

    def _apply_plan(self, plan: Plan) -> None:
        for stage, action in plan.actions.items():
            if stage == "prepare":
                continue
            if stage in plan.fell_back:
                self.record.stage(stage).detail = plan.fell_back[stage]
            if action in ("resumed", "skipped"):
                entry = self.record.stage(stage)
                entry.status = action
                entry.detail = (
                    f"from checkpoint {plan.resume_from}" if action == "resumed" else plan.reason
                )

    def _collect_evidence(self, stage: str, outcome: StageOutcome | None) -> None:
        outcome = outcome or StageOutcome.read(self.run_dir, stage)
        if outcome is None:
            # a failed wizard stage still leaves screenshots behind
            evidence = self.run_dir / "evidence"
            if evidence.is_dir():
                for png in sorted(evidence.glob(f"{stage}-*")):
                    if str(png) not in self.record.screenshots and png.suffix == ".png":
                        self.record.screenshots.append(str(png))
            return
        entry = self.record.stage(stage)
        entry.evidence = [*outcome.screenshots, *outcome.videos, *outcome.traces]
        self.record.screenshots += outcome.screenshots
        self.record.videos += outcome.videos
        self.record.traces += outcome.traces
        self.record.screens += outcome.screens
        facts = outcome.facts
        if stage == "flatten":
            self.record.sizes = {"before": facts["size_before"], "after": facts["size_after"]}
        if stage == "smoke":
            self.record.restore_to_ready_seconds = facts.get("restore_to_login_seconds")
        notebook = self.run_dir / "notebooks" / f"{stage}.ipynb"
        if notebook.exists():
            self.record.notebooks.append(str(notebook))
            entry.notebook = str(notebook.relative_to(self.run_dir))

    def _finish_record(self) -> None:
        state = self._state()
        if state.tags:
            self.record.image = state.tags[0]
            self.record.tags = state.tags
            self.record.image_id = state.final_image_id

    def _cleanup(self) -> None:
        """Remove every container this run started (by label), unless ``keep``."""
        if self.keep:
            return
        try:
            # the QMP folders of this run's VMs (bind-mounted from a host temp dir)
            filters = {"label": [f"{L.OWNER}={L.OWNER_VALUE}", f"{L.RUN_ID}={self.run_id}"]}
            for container in self.client.containers.list(all=True, filters=filters):
                for mount in container.attrs.get("Mounts", []):
                    if mount.get("Destination") == QMP_DIR_IN_CONTAINER:
                        shutil.rmtree(mount["Source"], ignore_errors=True)
            clean(self.client, run_id=self.run_id, images=False)
            remove_network(self.client, network_name(self.run_id))
        except Exception as err:  # cleanup must not hide the build's own error
            log.warning("cleanup of run %s failed: %s", self.run_id, err)
