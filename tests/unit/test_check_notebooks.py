"""tools/check_notebooks.py: notebooks with outputs fail the check; --fix strips them."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "check_notebooks.py"


def _main() -> Any:
    return runpy.run_path(str(TOOL))["main"]


def _notebook(path: Path, *, executed: bool) -> Path:
    cell: dict[str, Any] = {
        "cell_type": "code",
        "id": "c1",
        "metadata": {},
        "source": ["print(1)"],
        "execution_count": 3 if executed else None,
        "outputs": [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}]
        if executed
        else [],
    }
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1) + "\n")
    return path


def test_executed_notebook_fails_and_names_the_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _notebook(tmp_path / "run.ipynb", executed=True)
    assert _main()([str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: committed with outputs (cell 0: 1 output(s); cell 0: execution_count 3)" in err
    assert "--fix" in err


def test_clean_notebook_passes(tmp_path: Path) -> None:
    assert _main()([str(_notebook(tmp_path / "clean.ipynb", executed=False))]) == 0


def test_fix_strips_outputs_and_counts(tmp_path: Path) -> None:
    path = _notebook(tmp_path / "run.ipynb", executed=True)
    assert _main()(["--fix", str(path)]) == 0
    cell = json.loads(path.read_text())["cells"][0]
    assert cell["outputs"] == [] and cell["execution_count"] is None
    assert cell["source"] == ["print(1)"]
    assert _main()([str(path)]) == 0
