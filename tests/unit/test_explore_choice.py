"""`vdsm explore` restores this checkout's checkpoint: the one its newest run reckoned."""

from __future__ import annotations

import os
from pathlib import Path

from vdsmlib.notebook.explore import run_fingerprint
from vdsmlib.pipeline.context import RunState


def _run(out: Path, run_id: str, version: str, mtime: float, **fps: str) -> None:
    folder = out / run_id
    folder.mkdir(parents=True)
    RunState(run_id=run_id, dsm_version=version, fingerprints=fps).save(folder)
    os.utime(folder / "state.json", (mtime, mtime))


def test_the_newest_run_of_the_version_with_that_checkpoint(tmp_path: Path) -> None:
    _run(tmp_path, "old", "sim", 100, **{"start-ready": "a" * 64, "final": "b" * 64})
    _run(tmp_path, "new", "sim", 200, **{"start-ready": "c" * 64})  # failed before final
    _run(tmp_path, "other", "7.2.2", 300, **{"start-ready": "d" * 64})
    (tmp_path / "latest").symlink_to(tmp_path / "other")
    assert run_fingerprint(tmp_path, "sim", "start-ready") == ("new", "c" * 64)
    assert run_fingerprint(tmp_path, "sim", "final") == ("old", "b" * 64)
    assert run_fingerprint(tmp_path, "7.1.1", "final") is None
    assert run_fingerprint(tmp_path / "missing", "sim", "final") is None
