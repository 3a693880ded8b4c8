"""The state of one build run, shared by the stages through ``out/<run-id>/state.json``.

Stages may run in separate processes (one papermill notebook per stage), so everything a later
stage needs (base image, accelerator, fingerprints, the running VM container, the browser's saved
session) is written here. The file holds the admin password (a stage notebook must be able to
log in), so it is created readable by its owner only and never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import docker

from vdsmlib.docker.engine import connect
from vdsmlib.params import Params, load_params
from vdsmlib.project import params_dir

__all__ = ["RunState", "StageContext", "new_run_id"]


def new_run_id() -> str:
    """``20261126-204512-3fa9``: sortable, unique enough for labels and folder names."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass
class RunState:
    run_id: str
    dsm_version: str
    overrides: dict[str, Any] = field(default_factory=dict)
    params_dir: str | None = None
    keep: bool = False
    #: filled by prepare
    upstream_image: str | None = None
    base_image: str | None = None
    qemu_version: str | None = None
    accelerator: str | None = None
    accelerator_reason: str = ""
    fingerprints: dict[str, str] = field(default_factory=dict)
    #: filled by the planner and the VM stages
    resume_from: str | None = None
    checkpoints: dict[str, str] = field(default_factory=dict)
    container_id: str | None = None
    pat_path: str | None = None
    final_image_id: str | None = None
    #: the final image flatten made, until the smoke test passes and promotes it
    candidate: str | None = None
    #: the final image's tags (pinned first), set once it is promoted
    tags: list[str] = field(default_factory=list)
    #: the build's own network for stage VMs (vdsmlib.docker.network)
    network: str | None = None

    @staticmethod
    def path(run_dir: Path) -> Path:
        return run_dir / "state.json"

    def save(self, run_dir: Path) -> None:
        path = self.path(run_dir)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, run_dir: Path) -> RunState:
        return cls(**json.loads(cls.path(run_dir).read_text()))


class StageContext:
    """What a stage function gets: params, run state, paths and a Docker client."""

    def __init__(self, run_dir: Path, *, client: docker.DockerClient | None = None):
        self.run_dir = run_dir.resolve()
        self.state = RunState.load(self.run_dir)
        self.params: Params = load_params(
            self.state.dsm_version,
            self.state.overrides,
            params_dir=Path(self.state.params_dir) if self.state.params_dir else params_dir(),
        )
        if self.state.accelerator:
            # every stage after prepare waits as long as its accelerator needs (timeouts.tcg_factor)
            timeouts = self.params.timeouts.for_accelerator(self.state.accelerator)
            self.params = self.params.model_copy(update={"timeouts": timeouts})
        self._client = client

    @cached_property
    def client(self) -> docker.DockerClient:
        return self._client or connect()

    @property
    def evidence_dir(self) -> Path:
        path = self.run_dir / "evidence"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def storage_state(self) -> Path:
        """The browser's saved session (cookies, local storage), kept across stages."""
        return self.run_dir / "browser-state.json"

    def save(self) -> None:
        self.state.save(self.run_dir)
