"""The notebooks' display helpers: one-line text for CI logs, a table that survives any detail."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from vdsmlib.evidence.record import BuildRecord, failure_evidence
from vdsmlib.notebook import display as notebook
from vdsmlib.notebook.display import (
    CLIP_EMBED_BYTES,
    BuildFailed,
    BuildResult,
    finish,
    show_failure,
    show_outcome,
    show_record,
)
from vdsmlib.pipeline.stages import StageOutcome, screen_entries
from vdsmlib.wizard.report import ScreenRecord, StageReport

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000185d114090000000049454e44ae426082"
)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The MIME bundles the helpers display (what a notebook and papermill --log-output get)."""
    bundles: list[dict[str, str]] = []
    monkeypatch.setattr(notebook, "_display", bundles.append)
    return bundles


def test_stage_table_survives_a_newline_and_a_pipe_in_the_detail(
    shown: list[dict[str, str]],
) -> None:
    record = BuildRecord(run_id="r", target="sim", dsm_version="sim", status="failed")
    record.stage("boot").status = "ran"
    failed = record.stage("post-wizard")
    failed.status, failed.detail = "failed", "UnknownScreenError: first | line\nsecond line\n"
    record.stage("services")
    show_record(record)
    (bundle,) = shown
    rows = [r for r in bundle["text/markdown"].splitlines() if r.startswith("| ")]
    assert len(rows) == 4  # the header and one row per stage
    assert all(r.count("|") == 5 for r in rows), rows
    assert "first &#124; line second line" in rows[2]
    assert "IPython" not in bundle["text/plain"] and "post-wizard" in bundle["text/plain"]


def test_failure_shows_the_screenshot_text_and_suggested_entry(
    shown: list[dict[str, str]], tmp_path: Path
) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "post-wizard-unknown.png").write_bytes(PNG)
    (evidence / "post-wizard-unknown.txt").write_text("Storage Pool Check OK")
    (evidence / "post-wizard-unknown.yaml").write_text("- id: storage-pool-check\n")
    failure: dict[str, Any] = {
        "stage": "post-wizard",
        "error": "UnknownScreenError: a modal",
        "screenshot": "evidence/post-wizard-unknown.png",
        "text": "evidence/post-wizard-unknown.txt",
        "suggestion": "evidence/post-wizard-unknown.yaml",
        "screenshots": ["evidence/post-wizard-01-update-options.png"],
        "files": ["evidence/post-wizard-unknown.png"],
    }
    show_failure(tmp_path, failure)
    html = "".join(b.get("text/html", "") for b in shown)
    markdown = "".join(b.get("text/markdown", "") for b in shown)
    assert "data:image/png;base64," in html
    assert "Storage Pool Check OK" in markdown and "- id: storage-pool-check" in markdown
    assert "post-wizard-01-update-options" in markdown
    assert all(b["text/plain"] and "object>" not in b["text/plain"] for b in shown)


def test_finish_raises_one_line(tmp_path: Path) -> None:
    class FakeBuild:  # only what finish reads
        run_dir = tmp_path

    record = BuildRecord(run_id="r", target="sim", dsm_version="sim", status="failed")
    record.error = "stage post-wizard: UnknownScreenError: a modal (screenshot: evidence/x.png)"
    with pytest.raises(BuildFailed) as exc:
        finish(FakeBuild(), BuildResult(record, RuntimeError("long\nchained\nmessage")))
    assert str(exc.value) == (
        "build failed: stage post-wizard: UnknownScreenError: a modal; "
        f"run folder {os.path.relpath(tmp_path)}"
    )
    assert exc.value.__cause__ is None and exc.value.__suppress_context__
    record.status, record.image = "ok", "x:y"
    assert finish(FakeBuild(), BuildResult(record)) == "x:y"


def wizard_run(run: Path) -> StageReport:
    """A post-wizard report as the wizard leaves it: two screens (one skipped), then a failure
    on an unknown one; screenshots and clips on disk (the clips' bytes stand in for WebM)."""
    evidence = run / "evidence"
    (evidence / "clips").mkdir(parents=True)
    report = StageReport(stage="post-wizard", profile="p", video=evidence / "post-wizard.webm")
    report.video.write_bytes(b"webm")  # type: ignore[union-attr]
    for i, name in enumerate(["update-options", "2fa-promotion"], 1):
        shot = evidence / f"post-wizard-0{i}-{name}.png"
        shot.write_bytes(PNG)
        record = ScreenRecord(screen=name, seen_at=float(i), screenshot=shot, skipped=i == 2)
        if not record.skipped:
            record.clip = evidence / "clips" / f"{shot.stem}.webm"
            record.clip.write_bytes(b"clip-" + name.encode())
            record.video_start, record.video_end = 0.5, 2.25
        report.screens.append(record)
    failed = ScreenRecord(screen="unknown", seen_at=3.0, failed=True)
    failed.screenshot = evidence / "post-wizard-unknown.png"
    failed.screenshot.write_bytes(PNG)
    failed.clip = evidence / "clips" / "post-wizard-unknown.webm"
    failed.clip.write_bytes(b"clip-unknown")
    report.failed_screen = failed
    return report


def test_screen_entries_are_relative_to_the_run_folder(tmp_path: Path) -> None:
    entries = screen_entries(tmp_path, wizard_run(tmp_path))
    assert [(e["screen"], e["skipped"], e["failed"]) for e in entries] == [
        ("update-options", False, False),
        ("2fa-promotion", True, False),
        ("unknown", False, True),
    ]
    assert entries[0]["clip"] == "evidence/clips/post-wizard-01-update-options.webm"
    assert entries[0]["screenshot"] == "evidence/post-wizard-01-update-options.png"
    assert entries[0]["video"] == "evidence/post-wizard.webm"
    assert (entries[0]["video_start"], entries[0]["video_end"]) == (0.5, 2.25)
    assert entries[1]["clip"] is None


def test_each_screen_shows_its_screenshot_beside_its_clip(
    shown: list[dict[str, str]], tmp_path: Path
) -> None:
    report = wizard_run(tmp_path)
    report.failed_screen = None
    outcome = StageOutcome(
        detail="post-wizard: screens update-options.",
        screenshots=[str(p.screenshot) for p in report.screens],
        videos=[str(report.video)],
        screens=screen_entries(tmp_path, report),
    )
    show_outcome(outcome, notebook_dir=tmp_path / "notebooks", run_dir=tmp_path)
    screens = [b for b in shown if b["text/plain"].startswith("screen ")]
    assert len(screens) == 2  # one output per screen, the skipped one too (no clip)
    first = screens[0]["text/html"]
    assert first.count("data:image/png;base64,") == 1 and first.count("<video") == 1
    clip = base64.b64encode(b"clip-update-options").decode()
    assert f'src="data:video/webm;base64,{clip}"' in first  # small: embedded
    assert '0.5-2.2 s of <a href="../evidence/post-wizard.webm">' in first
    assert "<video" not in screens[1]["text/html"] and "(skipped)" in screens[1]["text/plain"]
    # no screenshot twice; the stage video stays linked, by path
    html = "".join(b.get("text/html", "") for b in shown)
    assert html.count("data:image/png;base64,") == 2
    assert 'src="../evidence/post-wizard.webm"' in html


def test_a_big_clip_is_referenced_not_embedded(shown: list[dict[str, str]], tmp_path: Path) -> None:
    report = wizard_run(tmp_path)
    assert report.screens[0].clip is not None
    report.screens[0].clip.write_bytes(bytes(CLIP_EMBED_BYTES + 1))
    outcome = StageOutcome(screens=screen_entries(tmp_path, report)[:1])
    show_outcome(outcome, notebook_dir=tmp_path / "notebooks", run_dir=tmp_path)
    (bundle,) = [b for b in shown if b["text/plain"].startswith("screen ")]
    assert 'src="../evidence/clips/post-wizard-01-update-options.webm"' in bundle["text/html"]
    assert "data:video/webm" not in bundle["text/html"]


def test_a_failed_stage_shows_the_unknown_screen_with_its_clip(
    shown: list[dict[str, str]], tmp_path: Path
) -> None:
    screens = screen_entries(tmp_path, wizard_run(tmp_path))
    (tmp_path / "evidence" / "post-wizard.screens.json").write_text(json.dumps(screens))
    failure = failure_evidence(tmp_path, "post-wizard")
    assert failure["clip"] == "evidence/clips/post-wizard-unknown.webm"
    # the stage notebook: every screen before it and the unknown one's clip, embedded
    show_failure(tmp_path, failure, notebook_dir=tmp_path / "notebooks", embed_screens=True)
    html = "".join(b.get("text/html", "") for b in shown)
    unknown = base64.b64encode(b"clip-unknown").decode()
    assert f"data:video/webm;base64,{unknown}" in html
    assert html.count("<video") == 1 + 1 + 1  # update-options, unknown, the stage video
    # the unknown screen's screenshot and clip side by side, as every screen's
    (unknown_bundle,) = [b for b in shown if "no profile entry knows" in b["text/plain"]]
    assert re.search(r"display:flex[^>]*><img [^>]*><video ", unknown_bundle["text/html"])
    # the build notebook: the clip by path, no other screen embedded
    shown.clear()
    show_failure(tmp_path, failure)
    html = "".join(b.get("text/html", "") for b in shown)
    assert "data:video/webm" not in html and "evidence/clips/post-wizard-unknown.webm" in html
    assert html.count("data:image/png;base64,") == 1
