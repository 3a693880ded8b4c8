"""The machine-readable record of a build: ``out/<run-id>/result.json`` and ``out/latest``.

A failed stage leaves its evidence in the record: :meth:`BuildRecord.fail_stage` lists the
stage's executed notebook, video, trace, screenshots and unknown-screen diagnosis, with paths
relative to the run folder (``record.failure``), and keeps the error to one line.

Every path in ``result.json`` is relative to the run folder, also inside messages (the folder
moves: a CI artifact, another machine); :func:`load_record` resolves the lists of evidence
(``screenshots``, ``videos``, ``traces``, ``notebooks``) against the folder it read from.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "STATUSES",
    "STEPPED_STAGES",
    "BuildRecord",
    "StageRecord",
    "failure_evidence",
    "failure_line",
    "first_line",
    "load_record",
    "next_step",
    "relative_paths",
]

#: the stages whose notebooks step through wizard screens (``make lab RUN=...`` opens them)
STEPPED_STAGES = ("admin", "post-wizard", "services")

#: a stage's status in ``result.json``: not reached yet, running now, done by this build,
#: restored from a checkpoint, not needed, failed, stopped by a signal or a kill (its detail
#: says which), never reached (the build stopped before it)
STATUSES = (
    "pending",
    "running",
    "ran",
    "resumed",
    "skipped",
    "failed",
    "interrupted",
    "not-reached",
)
#: the record's lists of evidence files (relative in the file, absolute once loaded)
_PATH_LISTS = ("screenshots", "videos", "traces", "notebooks")

#: The unknown-screen diagnosis files the wizard writes, by key in ``record.failure``.
_UNKNOWN = {"screenshot": "png", "suggestion": "yaml", "text": "txt", "page": "html"}


def first_line(text: str, limit: int = 400) -> str:
    """The first non-empty line of ``text``, at most ``limit`` characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def relative_paths(value: Any, run_dir: Path, *, others: tuple[Path, ...] = ()) -> Any:
    """``value`` (JSON data) with every path in ``run_dir`` relative to it, also inside text;
    a path in one of ``others`` (the project's params) relative to ``run_dir`` too."""
    if isinstance(value, dict):
        return {k: relative_paths(v, run_dir, others=others) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_paths(v, run_dir, others=others) for v in value]
    if not isinstance(value, str) or "/" not in value:
        return value
    root = str(run_dir)
    if value == root:
        return "."
    text = value.replace(root + os.sep, "")
    for other in others:
        base = str(other)
        if text == base or text.startswith(base + os.sep):
            return os.path.relpath(text, root)
    return text


def dialog_title(suggestion: Path) -> str | None:
    """The title of the unknown screen, from its suggested profile entry (``identify.text``)."""
    import yaml

    try:
        entries = yaml.safe_load(suggestion.read_text(encoding="utf-8"))
        text = entries[0]["identify"].get("text")
    except (OSError, ValueError, yaml.YAMLError, LookupError, TypeError, AttributeError):
        return None
    return str(text) if text else None


def _here(run_dir: Path, path: str, cwd: Path) -> str:
    """``path`` (relative to ``run_dir``, or absolute) as seen from ``cwd``."""
    return os.path.relpath(run_dir / path, cwd)


def next_step(record: BuildRecord, run_dir: Path, *, cwd: Path | None = None) -> str | None:
    """What to do after ``record``'s failure, paths as seen from ``cwd`` (default: here)."""
    cwd = cwd or Path.cwd()
    failure = record.failure or {}
    stage = failure.get("stage")
    if stage in STEPPED_STAGES:
        notebook = _here(run_dir, f"notebooks/{stage}.step.ipynb", cwd)
        how = "insert the suggested entry, " if failure.get("suggestion") else ""
        return (
            f"next: make lab RUN={_here(run_dir, '.', cwd)}, run {notebook} to the failed "
            f"screen, {how}step, then make build"
        )
    if failure.get("suggestion"):
        return "next: add the suggested entry to the stage's profile file, then make build"
    return None


def failure_line(record: BuildRecord, run_dir: Path, *, cwd: Path | None = None) -> str:
    """One line ending a failed build: the error, the unknown screen's title, screenshot and
    suggested entry, what to do next and the report; paths as seen from ``cwd`` (where the
    command ran), nothing cut."""
    cwd = cwd or Path.cwd()
    run_dir = run_dir.resolve()
    failure = record.failure or {}
    error = (record.error or "unknown error").replace(str(run_dir) + os.sep, "")
    error = re.sub(r" \(screenshot: [^)]*\)$", "", error)
    error = re.sub(
        r"\((executed notebook|screenshot): ([^)]+)\)",
        lambda m: f"({m[1]}: {_here(run_dir, m[2], cwd)})",
        error,
    )
    parts = [f"build failed: {error}"]
    if shot := failure.get("screenshot"):
        parts.append(f"screenshot {_here(run_dir, shot, cwd)}")
    if suggestion := failure.get("suggestion"):
        title = dialog_title(run_dir / suggestion)
        named = f' for "{title}"' if title else ""
        parts.append(f"suggested entry{named} {_here(run_dir, suggestion, cwd)}")
    if step := next_step(record, run_dir, cwd=cwd):
        parts.append(step)
    if (run_dir / "report.html").is_file():
        parts.append(f"report {_here(run_dir, 'report.html', cwd)}")
    else:
        parts.append(f"run folder {_here(run_dir, '.', cwd)}")
    return "; ".join(parts)


def failure_evidence(run_dir: Path, stage: str) -> dict[str, Any]:
    """What a failed ``stage`` left in ``run_dir``, paths relative to it (missing keys: none).

    Keys: ``stage``, ``notebook``, ``video``, ``trace``, ``screenshots`` (the screens handled
    before the failure, in order), ``screenshot``/``suggestion``/``text``/``page`` (the unknown
    screen's diagnosis), ``screens`` (each wizard screen of the stage with its screenshot and
    clip, the failed one last, from ``evidence/<stage>*.screens.json``), ``clip`` (the failed
    screen's clip), ``files`` (all of them).
    """
    evidence = run_dir / "evidence"
    found: dict[str, Any] = {"stage": stage}

    def rel(path: Path) -> str:
        return str(path.relative_to(run_dir))

    notebook = run_dir / "notebooks" / f"{stage}.ipynb"
    if notebook.is_file():
        found["notebook"] = rel(notebook)
    for key, name in (("video", f"{stage}.webm"), ("trace", f"{stage}.trace.zip")):
        if (evidence / name).is_file():
            found[key] = rel(evidence / name)
    found["screenshots"] = [rel(p) for p in sorted(evidence.glob(f"{stage}-[0-9][0-9]-*.png"))]
    for key, suffix in _UNKNOWN.items():
        path = evidence / f"{stage}-unknown.{suffix}"
        if path.is_file():
            found[key] = rel(path)
    found["screens"] = _screens(evidence, stage)
    failed = [s for s in found["screens"] if s.get("failed") and s.get("clip")]
    if failed and (run_dir / failed[-1]["clip"]).is_file():
        found["clip"] = failed[-1]["clip"]
    found["files"] = [
        found[k]
        for k in ("notebook", "screenshot", "suggestion", "text", "page", "clip", "video", "trace")
        if k in found
    ]  # fmt: skip
    return found


def _screens(evidence: Path, stage: str) -> list[dict[str, Any]]:
    """The screens the wizard parts of ``stage`` recorded (``services`` has ``services-ui``)."""
    paths = [evidence / f"{stage}.screens.json", *sorted(evidence.glob(f"{stage}-*.screens.json"))]
    screens: list[dict[str, Any]] = []
    for path in paths:
        try:
            screens += json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as err:
            screens.append({"stage": stage, "screen": "?", "error": f"{path.name}: {err}"})
    return screens


@dataclass
class StageRecord:
    name: str
    status: str = "pending"
    seconds: float = 0.0
    detail: str = ""
    evidence: list[str] = field(default_factory=list)
    #: the executed stage notebook, relative to the run folder (notebook executor)
    notebook: str | None = None


@dataclass
class BuildRecord:
    """Everything a CI run needs to explain itself; written after every stage."""

    run_id: str
    target: str
    dsm_version: str
    dsm_release: str = ""
    image: str | None = None
    image_id: str | None = None
    tags: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    accelerator: str | None = None
    accelerator_reason: str = ""
    qemu_version: str | None = None
    admin_user: str = ""
    status: str = "running"
    error: str | None = None
    plan: str = ""
    started_at: float = field(default_factory=time.time)
    seconds: float = 0.0
    stages: list[StageRecord] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    restore_to_ready_seconds: float | None = None
    screenshots: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    notebooks: list[str] = field(default_factory=list)
    #: every wizard screen: stage, screen, screenshot, clip, its window in the stage video
    #: (video, video_start, video_end), skipped, failed; paths relative to the run folder
    screens: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    published: list[dict[str, Any]] = field(default_factory=list)
    #: checkpoint cache transfers (``cache_repository``): pulls and pushes with sizes and times
    cache: list[dict[str, Any]] = field(default_factory=list)
    #: the failed stage's evidence, relative to the run folder (see :func:`failure_evidence`)
    failure: dict[str, Any] | None = None
    #: a no-op build: the run that produced the image it found
    image_run_id: str | None = None

    def stage(self, name: str) -> StageRecord:
        for stage in self.stages:
            if stage.name == name:
                return stage
        stage = StageRecord(name)
        self.stages.append(stage)
        return stage

    def fail_stage(self, run_dir: Path, stage: str, err: BaseException, seconds: float) -> None:
        """Mark ``stage`` failed: a one-line detail and error, its evidence listed."""
        entry = self.stage(stage)
        entry.status = "failed"
        entry.seconds = seconds
        entry.detail = f"{type(err).__name__}: {first_line(str(err), 2000)}"
        failure = failure_evidence(run_dir, stage)
        failure["error"] = entry.detail
        self.failure = failure
        entry.evidence = list(failure["files"])
        entry.notebook = failure.get("notebook")
        shot = failure.get("screenshot")
        self.error = f"stage {stage}: {entry.detail}" + (f" (screenshot: {shot})" if shot else "")
        for name in [*failure["screenshots"], *([shot] if shot else [])]:
            if str(run_dir / name) not in self.screenshots:
                self.screenshots.append(str(run_dir / name))
        if "video" in failure and str(run_dir / failure["video"]) not in self.videos:
            self.videos.append(str(run_dir / failure["video"]))
        self.screens += [s for s in failure["screens"] if s not in self.screens]
        notebook = failure.get("notebook")
        if notebook and str(run_dir / notebook) not in self.notebooks:
            self.notebooks.append(str(run_dir / notebook))

    def write(self, run_dir: Path, *, latest: bool = True) -> Path:
        """Write ``result.json`` atomically and point ``<out>/latest`` at the run folder.

        ``latest=False`` leaves ``<out>/latest`` where it is (a no-op build keeps it on the run
        that has the evidence).
        """
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "result.json"
        tmp = path.with_suffix(".json.tmp")
        data = relative_paths(asdict(self), run_dir.resolve(), others=_project_dirs())
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
        if not latest:
            return path
        link = run_dir.parent / "latest"
        tmp_link = run_dir.parent / f".latest.{os.getpid()}"
        if tmp_link.is_symlink():
            tmp_link.unlink()
        tmp_link.symlink_to(run_dir.name)
        os.replace(tmp_link, link)
        return path


def _project_dirs() -> tuple[Path, ...]:
    """The project's folder (params, profiles), for paths a record names outside its run."""
    from vdsmlib.project import ProjectError, project_dir

    try:
        return (project_dir().resolve(),)
    except ProjectError:
        return ()


def load_record(path: Path) -> BuildRecord:
    """Read ``result.json``; its evidence lists come back as paths below its folder."""
    data = json.loads(path.read_text())
    folder = path.parent.resolve()
    for key in _PATH_LISTS:
        if isinstance(data.get(key), list):
            data[key] = [str(folder / p) for p in data[key]]
    stages = [StageRecord(**s) for s in data.pop("stages", [])]
    known = BuildRecord.__dataclass_fields__
    return BuildRecord(**{k: v for k, v in data.items() if k in known}, stages=stages)
