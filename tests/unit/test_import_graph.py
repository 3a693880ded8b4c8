"""tools/import_graph.py: the layer rules hold for vdsmlib, and a wrong import is caught."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import import_graph  # noqa: E402


def test_vdsmlib_has_no_cycle_and_imports_go_down() -> None:
    assert import_graph.problems(import_graph.package_graph()) == []
    assert import_graph.main([]) == 0


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "vdsmlib", tmp_path / "vdsmlib", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_an_import_up_the_layers_fails(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    # the Web API client (layer 1) reaching for the pipeline (layer 3), inside a function
    _append(root / "vdsmlib/webapi/client.py", "def _f():\n    from vdsmlib.pipeline import run")
    found = import_graph.problems(import_graph.package_graph(root))
    assert any(line.startswith("webapi (layer 1) imports pipeline (layer 3)") for line in found)
    assert import_graph.main(["--root", str(root)]) == 1


def test_a_cycle_fails_even_within_one_layer(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    # services -> params exists nowhere; params -> services does: together a cycle
    _append(root / "vdsmlib/services/spec.py", "from vdsmlib.params import Params")
    found = import_graph.problems(import_graph.package_graph(root))
    assert any(line.startswith("cycle between params, services") for line in found), found


def test_the_simulator_is_never_imported(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _append(root / "vdsmlib/pipeline/base.py", "import vdsm_sim.plugin")
    found = import_graph.problems(import_graph.package_graph(root))
    assert any("imports vdsm_sim" in line for line in found), found


def test_a_new_package_must_be_given_a_layer(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "vdsmlib/extras").mkdir()
    (root / "vdsmlib/extras/__init__.py").write_text("from vdsmlib.errors import VdsmError\n")
    found = import_graph.problems(import_graph.package_graph(root))
    assert any(line.startswith("extras: in no layer") for line in found), found
