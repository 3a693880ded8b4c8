"""result.json and out/latest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdsmlib.evidence.record import (
    STATUSES,
    BuildRecord,
    failure_line,
    load_record,
    relative_paths,
)


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


def test_a_no_op_leaves_latest_on_the_run_that_did_something(tmp_path: Path) -> None:
    BuildRecord(run_id="r1", target="sim", dsm_version="sim").write(tmp_path / "r1")
    noop = BuildRecord(run_id="r2", target="sim", dsm_version="sim", image_run_id="r1")
    noop.write(tmp_path / "r2", latest=False)
    assert (tmp_path / "latest").resolve() == (tmp_path / "r1").resolve()
    assert load_record(tmp_path / "r2" / "result.json").image_run_id == "r1"


def test_a_failed_stage_lists_its_notebook_and_evidence_relative_to_the_run(
    tmp_path: Path,
) -> None:
    run = tmp_path / "r1"
    for name in [
        "notebooks/post-wizard.ipynb",
        "evidence/post-wizard-01-update-options.png",
        "evidence/post-wizard-02-synology-account.png",
        "evidence/post-wizard-unknown.png",
        "evidence/post-wizard-unknown.yaml",
        "evidence/post-wizard-unknown.txt",
        "evidence/post-wizard-unknown.html",
        "evidence/post-wizard.webm",
        "evidence/post-wizard.trace.zip",
        "evidence/clips/post-wizard-01-update-options.webm",
        "evidence/clips/post-wizard-unknown.webm",
        "evidence/admin-01-welcome.png",  # another stage's
    ]:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("x")
    # what the wizard stage wrote as it failed (vdsmlib.pipeline.stages.screen_entries)
    screens = [
        {"stage": "post-wizard", "screen": "update-options", "failed": False,
         "clip": "evidence/clips/post-wizard-01-update-options.webm"},
        {"stage": "post-wizard", "screen": "unknown", "failed": True,
         "clip": "evidence/clips/post-wizard-unknown.webm"},
    ]  # fmt: skip
    (run / "evidence/post-wizard.screens.json").write_text(json.dumps(screens))
    (run / "evidence/admin.screens.json").write_text(json.dumps([{"screen": "welcome"}]))
    record = BuildRecord(run_id="r1", target="sim", dsm_version="sim")
    err = RuntimeError("stage post-wizard: unknown screen after 7 s: a modal\nTraceback lines\n")
    record.fail_stage(run, "post-wizard", err, 12.5)
    record.write(run)
    data = json.loads((run / "result.json").read_text())
    failure = data["failure"]
    assert failure["stage"] == "post-wizard"
    assert failure["notebook"] == "notebooks/post-wizard.ipynb"
    assert failure["screenshot"] == "evidence/post-wizard-unknown.png"
    assert failure["suggestion"] == "evidence/post-wizard-unknown.yaml"
    assert failure["video"] == "evidence/post-wizard.webm"
    assert failure["screenshots"] == [
        "evidence/post-wizard-01-update-options.png",
        "evidence/post-wizard-02-synology-account.png",
    ]
    # each screen with its clip, the unknown one's clip among the evidence files
    assert failure["screens"] == screens and data["screens"] == screens
    assert failure["clip"] == "evidence/clips/post-wizard-unknown.webm"
    assert failure["clip"] in failure["files"]
    stage = next(s for s in data["stages"] if s["name"] == "post-wizard")
    assert stage["status"] == "failed" and stage["seconds"] == 12.5
    assert stage["detail"] == "RuntimeError: stage post-wizard: unknown screen after 7 s: a modal"
    assert stage["notebook"] == "notebooks/post-wizard.ipynb"
    assert stage["evidence"] == failure["files"]
    assert "evidence/post-wizard.trace.zip" in stage["evidence"]
    assert not any("admin" in f for f in stage["evidence"])
    assert data["error"] == (
        "stage post-wizard: RuntimeError: stage post-wizard: unknown screen after 7 s: a modal "
        "(screenshot: evidence/post-wizard-unknown.png)"
    )
    assert "evidence/post-wizard-unknown.png" in data["screenshots"]
    assert data["notebooks"] == ["notebooks/post-wizard.ipynb"]
    # loaded, the evidence lists are paths below the folder read from
    loaded = load_record(run / "result.json")
    assert str(run.resolve() / "evidence/post-wizard-unknown.png") in loaded.screenshots
    assert loaded.notebooks == [str(run.resolve() / "notebooks/post-wizard.ipynb")]


def test_result_json_names_no_absolute_path_of_the_run(tmp_path: Path) -> None:
    """Paths in evidence lists, stage evidence and messages: relative to the run."""
    run = (tmp_path / "out" / "r2").resolve()
    (run / "evidence").mkdir(parents=True)
    (run / "evidence" / "services-01-nfs.png").write_text("x")
    record = BuildRecord(run_id="r2", target="sim", dsm_version="sim")
    record.screenshots.append(str(run / "evidence" / "services-01-nfs.png"))
    record.stage("admin").evidence = [str(run / "evidence" / "admin.webm")]
    err = RuntimeError(f"VdsmError: boom (executed notebook: {run}/notebooks/services.ipynb)")
    record.fail_stage(run, "services", err, 1.0)
    record.write(run)
    text = (run / "result.json").read_text()
    assert str(run) not in text and str(tmp_path) not in text
    data = json.loads(text)
    assert data["error"].endswith("(executed notebook: notebooks/services.ipynb)")
    assert data["screenshots"] == ["evidence/services-01-nfs.png"]
    assert data["stages"][0]["evidence"] == ["evidence/admin.webm"]
    assert {
        "pending",
        "running",
        "ran",
        "resumed",
        "skipped",
        "failed",
        "interrupted",
        "not-reached",
    } == set(STATUSES)


def test_a_project_path_is_named_relative_to_the_run(tmp_path: Path) -> None:
    """The params' profile folders of a checkout whose out/ holds the run."""
    project = tmp_path / "checkout"
    run = project / "out" / "r3"
    data = {"params": {"profile_dirs": [str(project / "params/profiles")]}, "out": [str(run)]}
    relative = relative_paths(data, run, others=(project,))
    assert relative == {"params": {"profile_dirs": ["../../params/profiles"]}, "out": ["."]}
    assert relative_paths("/volume1/ci", run, others=(project,)) == "/volume1/ci"


def test_the_failure_line_names_the_dialog_the_files_and_the_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths as seen from where the command ran; nothing cut; one line."""
    checkout = tmp_path / "checkout"
    run = checkout / "out" / "20261203-000000-abcd"
    (run / "evidence").mkdir(parents=True)
    (run / "report.html").write_text("<html>")
    (run / "evidence" / "post-wizard-unknown.yaml").write_text(
        "# Suggested entry\n- id: storage-pool-check\n  identify:\n"
        "    selector: .x-window-header-text\n    text: Storage Pool Check\n  actions: []\n"
    )
    record = BuildRecord(run_id=run.name, target="sim", dsm_version="sim", status="failed")
    why = "unknown screen after 8 s: a modal (timeouts.modal) " + "x" * 600
    record.error = (
        f"stage post-wizard: VdsmError: UnknownScreenError: {why} (executed notebook: "
        f"{run}/notebooks/post-wizard.ipynb) (screenshot: evidence/post-wizard-unknown.png)"
    )
    record.failure = {
        "stage": "post-wizard",
        "screenshot": "evidence/post-wizard-unknown.png",
        "suggestion": "evidence/post-wizard-unknown.yaml",
    }
    monkeypatch.chdir(checkout)
    line = failure_line(record, run)
    rel = f"out/{run.name}"
    assert line == (
        f"build failed: stage post-wizard: VdsmError: UnknownScreenError: {why} "
        f"(executed notebook: {rel}/notebooks/post-wizard.ipynb); "
        f"screenshot {rel}/evidence/post-wizard-unknown.png; "
        f'suggested entry for "Storage Pool Check" {rel}/evidence/post-wizard-unknown.yaml; '
        f"next: make lab RUN={rel}, run {rel}/notebooks/post-wizard.step.ipynb to the failed "
        "screen, insert the suggested entry, step, then make build; "
        f"report {rel}/report.html"
    )
    # from elsewhere, the same files as seen from there; a stage without screens: no make lab
    record.failure = {"stage": "flatten"}
    line = failure_line(record, run, cwd=tmp_path)
    assert "make lab" not in line and line.endswith("; report checkout/" + rel + "/report.html")
