"""result.json and out/latest."""

from __future__ import annotations

import json
from pathlib import Path

from vdsmlib.build.record import BuildRecord, load_record


def test_record_round_trips_and_latest_points_at_the_newest(tmp_path: Path) -> None:
    first = BuildRecord(run_id="r1", target="sim", dsm_version="sim")
    first.stage("boot").status = "ran"
    first.write(tmp_path / "r1")
    second = BuildRecord(run_id="r2", target="sim", dsm_version="sim", image="x:y")
    second.write(tmp_path / "r2")
    latest = tmp_path / "latest"
    assert latest.is_symlink() and latest.resolve() == (tmp_path / "r2").resolve()
    data = json.loads((latest / "result.json").read_text())
    assert data["image"] == "x:y"
    again = load_record(tmp_path / "r1" / "result.json")
    assert again.stages[0].name == "boot" and again.stages[0].status == "ran"
