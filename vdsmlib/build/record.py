"""The machine-readable record of a build: ``out/<run-id>/result.json`` and ``out/latest``."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BuildRecord", "StageRecord", "load_record"]


@dataclass
class StageRecord:
    name: str
    status: str = "pending"
    seconds: float = 0.0
    detail: str = ""
    evidence: list[str] = field(default_factory=list)


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
    params: dict[str, Any] = field(default_factory=dict)
    published: list[dict[str, Any]] = field(default_factory=list)
    #: checkpoint cache transfers (``cache_repository``): pulls and pushes with sizes and times
    cache: list[dict[str, Any]] = field(default_factory=list)

    def stage(self, name: str) -> StageRecord:
        for stage in self.stages:
            if stage.name == name:
                return stage
        stage = StageRecord(name)
        self.stages.append(stage)
        return stage

    def write(self, run_dir: Path) -> Path:
        """Write ``result.json`` atomically and point ``<out>/latest`` at the run folder."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "result.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)
        latest = run_dir.parent / "latest"
        tmp_link = run_dir.parent / f".latest.{os.getpid()}"
        if tmp_link.is_symlink():
            tmp_link.unlink()
        tmp_link.symlink_to(run_dir.name)
        os.replace(tmp_link, latest)
        return path


def load_record(path: Path) -> BuildRecord:
    data = json.loads(path.read_text())
    stages = [StageRecord(**s) for s in data.pop("stages", [])]
    return BuildRecord(**data, stages=stages)
