"""`make lab`: committed notebooks saved without outputs; the failed stage's copy to step."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vdsmlib.errors import VdsmError
from vdsmlib.evidence.record import BuildRecord, StageRecord
from vdsmlib.notebook.lab import keep_checkout_clean, main, step_notebook, strip_outputs
from vdsmlib.project import notebooks_dir, project_dir


def _with_outputs() -> dict:
    nb = json.loads((notebooks_dir() / "admin.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x\n"}]
            cell["execution_count"] = 1
    nb["metadata"]["widgets"] = {"state": {}}
    return nb


def _code_outputs(nb: dict) -> list:
    return [c["outputs"] for c in nb["cells"] if c["cell_type"] == "code" if c["outputs"]]


def test_a_committed_notebook_is_saved_without_outputs_a_run_copy_with_them() -> None:
    manager = SimpleNamespace(root_dir=str(project_dir()))
    committed: dict[str, Any] = {"type": "notebook", "content": _with_outputs()}
    keep_checkout_clean(model=committed, path="notebooks/admin.ipynb", contents_manager=manager)
    assert _code_outputs(committed["content"]) == []
    assert "widgets" not in committed["content"]["metadata"]
    copy: dict[str, Any] = {"type": "notebook", "content": _with_outputs()}
    keep_checkout_clean(model=copy, path="out/x/notebooks/admin.ipynb", contents_manager=manager)
    assert _code_outputs(copy["content"])
    text: dict[str, Any] = {"type": "file", "content": "notebooks"}
    keep_checkout_clean(model=text, path="notebooks/README", contents_manager=manager)
    assert text["content"] == "notebooks"
    assert strip_outputs(copy["content"]) and not strip_outputs(copy["content"])


def _failed_run(tmp_path: Path, stage: str) -> Path:
    run = tmp_path / "out" / "20261203-000000-abcd"
    run.mkdir(parents=True)
    (run / "state.json").write_text("{}")
    record = BuildRecord(run_id=run.name, target="sim", dsm_version="sim", status="failed")
    record.stages = [StageRecord("admin", "ran"), StageRecord(stage, "failed")]
    (run / "result.json").write_text(json.dumps(asdict(record)))
    return run


def test_the_failed_stage_gets_a_copy_with_its_run_folder_and_stepping(tmp_path: Path) -> None:
    run = _failed_run(tmp_path, "post-wizard")
    copy = step_notebook(run)
    assert copy == run / "notebooks" / "post-wizard.step.ipynb"
    nb = json.loads(copy.read_text())
    params = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    namespace: dict = {}
    exec("".join(params["source"]), namespace)
    assert namespace["run_dir"] == str(run) and namespace["stepping"] is True
    # a second call keeps the person's copy
    copy.write_text(copy.read_text().replace("stepping = True", "stepping = True  # mine"))
    assert "# mine" in step_notebook(run).read_text()


def test_a_stage_without_screens_says_so(tmp_path: Path) -> None:
    run = _failed_run(tmp_path, "flatten")
    with pytest.raises(VdsmError, match="no screens to step through"):
        step_notebook(run)


def test_main_prints_the_copy_or_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _failed_run(tmp_path, "admin")
    assert main([str(run)]) == 0
    assert capsys.readouterr().out.strip() == str(run / "notebooks" / "admin.step.ipynb")
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("make lab: no run folder") and err.count("\n") == 1
