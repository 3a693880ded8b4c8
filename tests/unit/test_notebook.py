"""The notebooks' display helpers: one-line text for CI logs, a table that survives any detail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vdsmlib import notebook
from vdsmlib.build.record import BuildRecord
from vdsmlib.notebook import BuildFailed, BuildResult, finish, show_failure, show_record


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
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000185d114090000000049454e44ae426082"
    )
    (evidence / "post-wizard-unknown.png").write_bytes(png)
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
        "build failed: stage post-wizard: UnknownScreenError: a modal (screenshot: "
        f"evidence/x.png); run folder: {tmp_path}"
    )
    assert exc.value.__cause__ is None and exc.value.__suppress_context__
    record.status, record.image = "ok", "x:y"
    assert finish(FakeBuild(), BuildResult(record)) == "x:y"
