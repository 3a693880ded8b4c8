"""Stage notebooks as steps: where a run folder is found, and what the notebooks call."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vdsmlib.checkpoints.fingerprints import STAGE_CODE, VDSMLIB_DIR, import_closure
from vdsmlib.errors import VdsmError
from vdsmlib.notebook.steps import StageNotebook, resolve_run_dir
from vdsmlib.project import notebooks_dir


def _run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "state.json").write_text("{}")
    return folder


def test_run_dir_relative_to_the_project_when_not_below_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    run = _run(project / "out" / "20261203-000000-abcd")
    kernel_cwd = tmp_path / "project" / "notebooks"
    kernel_cwd.mkdir()
    monkeypatch.chdir(kernel_cwd)
    assert resolve_run_dir("out/20261203-000000-abcd", base=project) == run
    assert resolve_run_dir(str(run), base=tmp_path / "elsewhere") == run


def test_a_missing_run_folder_names_the_absolute_folders_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VdsmError) as err:
        resolve_run_dir("out/nope", base=tmp_path / "project")
    message = str(err.value)
    assert str(tmp_path / "out" / "nope") in message
    assert str(tmp_path / "project" / "out" / "nope") in message
    assert "\n" not in message
    with pytest.raises(VdsmError, match="run_dir is empty"):
        resolve_run_dir("")


@pytest.mark.parametrize("stage", ["admin", "post-wizard", "services"])
def test_stage_notebooks_are_steps_of_one_stage_notebook(stage: str) -> None:
    nb = json.loads((notebooks_dir() / f"{stage}.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and "run_dir" in "".join(params[0]["source"])
    assert "stepping" in "".join(params[0]["source"])
    names = re.findall(r"\bnb\.(\w+)", "\n".join(code))
    # each step is its own cell, and every call is a method the notebook helper has
    assert sum("await nb." in c for c in code) >= 4
    for name in set(names) - {"ctx"}:
        assert hasattr(StageNotebook, name), name
    assert code[-1].strip() == "outcome = nb.finish()"


def test_the_steps_are_in_the_final_checkpoints_code() -> None:
    """The cells call the stage code's own steps: the ``final`` fingerprint covers them."""
    closure = {p.relative_to(VDSMLIB_DIR).as_posix() for p in import_closure(STAGE_CODE["final"])}
    assert {"pipeline/configure.py", "pipeline/stage.py"} <= closure
