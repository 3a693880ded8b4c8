"""Fingerprints: each covers what changes its stage, and nothing later changes earlier ones."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from vdsmlib.build import fingerprints
from vdsmlib.build.base import PreparedBase
from vdsmlib.build.fingerprint import VDSMLIB_DIR, files_digest, fingerprint, sources_digest
from vdsmlib.params import load_params
from vdsmlib.project import params_dir, project_dir

CHECKPOINTS = ("start-ready", "final", "image")


def _base(**changes: str) -> PreparedBase:
    fields = dict(
        upstream_image="vdsm-ci/sim:latest",
        upstream_id="sha256:up",
        base_image="vdsm-ci/base:sim-x",
        base_id="sha256:base",
        prepare_fingerprint="p" * 64,
        qemu_version="7.2.22",
        accelerator="tcg",
        accelerator_reason="",
        built=False,
        detail="",
    )
    fields.update(changes)
    return PreparedBase(**fields)  # type: ignore[arg-type]


def test_fingerprint_is_stable_and_chained() -> None:
    a = fingerprint({"x": 1, "y": [1, 2]}, previous="p")
    assert a == fingerprint({"y": [1, 2], "x": 1}, previous="p")
    assert a != fingerprint({"x": 1, "y": [1, 2]}, previous="q")


@pytest.mark.parametrize(
    ("base_change", "expect_boot_changed"),
    [
        ({"qemu_version": "8.0.0"}, True),
        ({"accelerator": "kvm"}, True),
        ({"base_id": "sha256:other"}, True),
        ({"detail": "reused"}, False),
    ],
)
def test_boot_covers_qemu_accelerator_and_base(
    base_change: dict, expect_boot_changed: bool
) -> None:
    params = load_params("sim")
    before = fingerprints.compute(params, _base())
    after = fingerprints.compute(params, _base(**base_change))
    assert (before["start-ready"] != after["start-ready"]) is expect_boot_changed
    assert (before["final"] != after["final"]) is expect_boot_changed


def test_admin_password_changes_final_but_not_start_ready() -> None:
    a = fingerprints.compute(load_params("sim"), _base())
    b = fingerprints.compute(load_params("sim", {"admin_password": "Other-Passw0rd"}), _base())
    assert a["start-ready"] == b["start-ready"]
    assert a["final"] != b["final"] and a["image"] != b["image"]


def test_sim_knobs_change_start_ready() -> None:
    a = fingerprints.compute(load_params("sim"), _base())
    b = fingerprints.compute(load_params("sim", {"sim_knobs": {"SIM_SCREENS": ""}}), _base())
    assert a["start-ready"] != b["start-ready"]


def test_post_wizard_profile_bytes_change_final_only(tmp_path: Path) -> None:
    # a copy of params/: the tracked profile stays as it is
    copy = tmp_path / "params"
    shutil.copytree(params_dir(), copy)
    params = load_params("sim", params_dir=copy)
    path = copy / "profiles" / params.profile / "post-wizard.yaml"
    assert Path(params.profile_dirs[0]) == copy / "profiles"
    before = fingerprints.compute(params, _base())
    path.write_bytes(path.read_bytes() + b"\n# a comment\n")
    after = fingerprints.compute(params, _base())
    assert before["start-ready"] == after["start-ready"]
    assert before["final"] != after["final"] and before["image"] != after["image"]


def test_files_digest_covers_names_and_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a").write_text("1")
    first = files_digest([folder])
    assert files_digest([folder]) == first
    (folder / "a").write_text("2")
    second = files_digest([folder])
    assert second != first  # bytes
    (folder / "a").rename(folder / "b")
    assert files_digest([folder]) != second  # names, same bytes
    (folder / "sub").mkdir()
    (folder / "b").rename(folder / "sub" / "b")
    assert files_digest([folder]) != second  # the path below the folder, not only the name


def test_sources_digest_names_only_existing_files() -> None:
    for name in (
        *fingerprints.BOOT_SOURCES,
        *fingerprints.CONFIGURE_SOURCES,
        *fingerprints.IMAGE_SOURCES,
        *fingerprints.NOT_IN_CHECKPOINTS,
    ):
        assert (VDSMLIB_DIR / name).exists(), name
    assert sources_digest(["build/plan.py"]) != sources_digest(["build/record.py"])
    with pytest.raises(FileNotFoundError, match="no_such_module"):
        sources_digest(["build/no_such_module.py"])


# -- every source file of the stages is in the checkpoint that holds their work ----------------


def _files(names: tuple[str, ...], root: Path = VDSMLIB_DIR) -> set[str]:
    found: set[str] = set()
    for name in names:
        path = root / name
        paths = sorted(path.rglob("*")) if path.is_dir() else [path]
        found |= {
            p.relative_to(root).as_posix()
            for p in paths
            if p.is_file() and "__pycache__" not in p.parts
        }
    return found


def _module_file(module: str) -> str | None:
    """``vdsmlib.build.vm`` -> ``build/vm.py`` (or a package's ``__init__.py``)."""
    path = VDSMLIB_DIR.joinpath(*module.split(".")[1:])
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(VDSMLIB_DIR).as_posix()
    return None


def _imported(rel: str) -> set[str]:
    """vdsmlib modules that ``rel`` imports anywhere (module level or inside functions),
    with the packages whose ``__init__`` runs on the way."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((VDSMLIB_DIR / rel).read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if not name.startswith("vdsmlib"):
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                file = _module_file(".".join(parts[:i]))
                if file:
                    found.add(file)
    return found


def _closure(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        rel = todo.pop()
        if rel not in seen:
            seen.add(rel)
            todo.extend(_imported(rel))
    return seen


def test_stage_code_is_covered_by_a_checkpoint_or_declared_outside_them() -> None:
    reached = _closure("build/stages.py")
    assert "webapi/services.py" in reached and "wizard/engine.py" in reached  # the walk works
    # the simulator's code reaches checkpoints through its image id (base_id), not these lists
    reached = {f for f in reached if not f.startswith("sim/")}
    covered = _files(
        fingerprints.BOOT_SOURCES
        + fingerprints.CONFIGURE_SOURCES
        + fingerprints.IMAGE_SOURCES
        + fingerprints.NOT_IN_CHECKPOINTS
    )
    missing = sorted(reached - covered)
    assert not missing, (
        f"{missing}: stage code that no fingerprint covers; add each to the sources of the first "
        "checkpoint whose stages run it (vdsmlib/build/fingerprints.py)"
    )


def _first_checkpoint(rel: str) -> str:
    for checkpoint, names in (
        ("start-ready", fingerprints.BOOT_SOURCES),
        ("final", fingerprints.CONFIGURE_SOURCES),
        ("image", fingerprints.IMAGE_SOURCES),
    ):
        if rel in _files(names):
            return checkpoint
    raise AssertionError(rel)


def test_editing_each_stage_file_invalidates_its_checkpoint_and_later_ones(
    tmp_path: Path,
) -> None:
    package = tmp_path / "vdsmlib"
    shutil.copytree(VDSMLIB_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    project = tmp_path / "project"
    project.mkdir()
    for name in fingerprints.IMAGE_PROJECT_FILES:
        shutil.copy(project_dir() / name, project / name)
    params = load_params("sim")

    def compute() -> dict[str, str]:
        return fingerprints.compute(params, _base(), package_dir=package, project=project)

    edits: list[tuple[Path, str]] = [
        (package / rel, _first_checkpoint(rel))
        for rel in sorted(
            _files(
                fingerprints.BOOT_SOURCES
                + fingerprints.CONFIGURE_SOURCES
                + fingerprints.IMAGE_SOURCES
            )
        )
    ]
    edits += [(project / name, "image") for name in fingerprints.IMAGE_PROJECT_FILES]
    # stage_boot and the wizard it runs are boot code; the Web API runs in services only
    assert _first_checkpoint("build/stages.py") == "start-ready"
    assert _first_checkpoint("wizard/engine.py") == "start-ready"
    assert _first_checkpoint("webapi/services.py") == "final"
    assert _first_checkpoint("build/flatten.py") == "image"
    before = compute()
    for path, first in edits:
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        after = compute()
        path.write_bytes(original)
        changed = [c for c in CHECKPOINTS if before[c] != after[c]]
        expected = list(CHECKPOINTS[CHECKPOINTS.index(first) :])
        assert changed == expected, f"editing {path.relative_to(tmp_path)} changed {changed}"
    assert compute() == before
