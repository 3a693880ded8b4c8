"""report.html: self-contained, under its cap, with the timeline, every screen and the failure."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vdsmlib.evidence.record import BuildRecord, StageRecord
from vdsmlib.evidence.report import (
    SIZE_CAP,
    docker_run_line,
    thumbnail,
    timeline_svg,
    write_report,
)

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def _png(path: Path, seed: int) -> Path:
    """A 960x600 PNG of noise (incompressible: the worst case for the cap)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=s=960x600,noise=alls=12:allf=u:all_seed={seed}", "-frames:v", "1",
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def _record(run_dir: Path, shots: list[Path]) -> BuildRecord:
    record = BuildRecord(run_id=run_dir.name, target="sim", dsm_version="sim", status="ok")
    for name, seconds in [("prepare", 2.0), ("boot", 60.0), ("admin", 9.5), ("post-wizard", 20)]:
        stage = record.stage(name)
        stage.status, stage.seconds, stage.detail = "ran", seconds, "line one\nline two"
    record.screenshots = [str(p) for p in shots]
    record.image = "ghcr.io/vdsm-ci/vdsm-configured:sim-tcg-1234abcd"
    record.params = {"run": {"devices": ["/dev/net/tun"], "cap_add": ["NET_ADMIN"]}}
    record.sizes = {"before": 2_000_000_000, "after": 900_000_000}
    return record


def test_report_has_timeline_thumbnails_sizes_and_the_docker_run_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shots = [_png(run_dir / "evidence" / f"post-wizard-0{i}-s{i}.png", i) for i in range(3)]
    record = _record(run_dir, shots)
    clip = "evidence/clips/post-wizard-01-s1.webm"
    record.screens = [{"screenshot": "evidence/post-wizard-01-s1.png", "clip": clip}]
    path = write_report(run_dir, record)
    assert path == run_dir / "report.html"
    page = path.read_text()
    assert page.count(">clip</a>") == 1 and f"<a href='{clip}'>clip</a>" in page
    assert page.count("<rect ") == 4 and "<svg" in page
    assert page.count("data:image/jpeg;base64,") == 3
    assert "post-wizard-01-s1.png" in page
    assert "900 MB after" in page
    assert (
        "docker run -d -p 127.0.0.1:5000:5000 --device /dev/net/tun --cap-add NET_ADMIN "
        "ghcr.io/vdsm-ci/vdsm-configured:sim-tcg-1234abcd" in page
    )
    assert not re.search(r"(src|href)=['\"](http|/)", page)  # nothing outside the page


def test_thumbnails_are_small(tmp_path: Path) -> None:
    shot = _png(tmp_path / "a.png", 7)
    data = thumbnail(shot)
    assert data is not None and data[:2] == b"\xff\xd8"  # JPEG
    assert len(data) < shot.stat().st_size / 4


def test_report_stays_under_its_cap_and_names_what_it_left_out(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shots = [_png(run_dir / "evidence" / f"boot-{i:02d}-x.png", i) for i in range(12)]
    cap = 60_000
    path = write_report(run_dir, _record(run_dir, shots), cap=cap)
    assert path is not None
    size = path.stat().st_size
    assert size <= cap, size
    page = path.read_text()
    assert "Not shown (size cap)" in page and "boot-11-x.png" in page
    assert 0 < page.count("data:image/jpeg;base64,") < 12
    assert SIZE_CAP == 2_000_000


def test_docker_run_line_adds_kvm_and_is_empty_without_an_image() -> None:
    record = BuildRecord(run_id="r", target="sim", dsm_version="sim", accelerator="kvm")
    assert docker_run_line(record) == ""
    record.image = "x:y"
    assert docker_run_line(record) == (
        "docker run -d -p 127.0.0.1:5000:5000 --device /dev/net/tun --device /dev/kvm "
        "--cap-add NET_ADMIN x:y"
    )


def test_timeline_labels_fit_in_the_picture() -> None:
    """The label after the longest bar ("36.0 s failed") is whole, not cut by the edge."""
    stages = [StageRecord("boot", "ran", 1.0), StageRecord("post-wizard", "resumed", 1234.5)]
    svg = timeline_svg(stages, width=720)
    labels = re.findall(r'<text x="([\d.]+)" y="[\d.]+">([^<]*s [a-z]+)</text>', svg)
    assert [text for _, text in labels] == ["1.0 s ran", "1234.5 s resumed"]
    # sans-serif at 12 px: at most 7 px a character
    assert all(float(x) + 7 * len(text) <= 720 for x, text in labels), labels
