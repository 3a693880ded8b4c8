"""Fingerprints: each covers what changes its stage, and nothing later changes earlier ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vdsmlib.checkpoints import fingerprints
from vdsmlib.checkpoints.fingerprints import (
    VDSMLIB_DIR,
    files_digest,
    fingerprint,
    import_closure,
    sources_digest,
)
from vdsmlib.params import load_params
from vdsmlib.pipeline.base import PreparedBase
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


def test_sources_digest_refuses_a_stage_module_that_is_not_there() -> None:
    assert sources_digest(["vdsmlib.pipeline.boot"]) != sources_digest(["vdsmlib.pipeline.flatten"])
    with pytest.raises(FileNotFoundError, match="no_such_module"):
        sources_digest(["vdsmlib.pipeline.no_such_module"])


# -- the code a checkpoint covers is its stage code's import closure ---------------------------


def _rel(paths: list[Path], root: Path = VDSMLIB_DIR) -> set[str]:
    return {p.relative_to(root).as_posix() for p in paths}


def test_closure_follows_imports_at_any_depth_and_leaves_orchestration_out() -> None:
    boot = _rel(import_closure(fingerprints.STAGE_CODE["start-ready"]))
    final = _rel(import_closure(fingerprints.STAGE_CODE["final"]))
    image = _rel(import_closure(fingerprints.STAGE_CODE["image"]))
    # what each stage runs, reached through other modules
    assert {"pipeline/boot.py", "pipeline/base.py", "wizard/engine.py", "qemu/qmp.py"} <= boot
    assert {"checkpoints/vm.py", "pat.py", "dsm/policy.py", "docker/container.py"} <= boot
    assert {"pipeline/configure.py", "services/api.py", "webapi/client.py"} <= final
    assert {"pipeline/flatten.py", "checkpoints/vm.py"} <= image
    # the checkpoint format (how the state is saved, restored and checked) changes every
    # fingerprint, so a checkpoint of another format is never restored by this code
    assert {"qemu/migration.py", "checkpoints/vm.py"} <= boot & final & image
    assert "checkpoints/check.py" in final  # the restore failure it tells
    # the Web API's services are applied only after start-ready
    assert "services/api.py" not in boot
    # what cannot change a checkpoint: orchestration, records, reports, notebooks, the CLI
    for outside in ("pipeline/run.py", "pipeline/plan.py", "evidence/record.py", "cli/main.py"):
        assert outside not in boot | final | image, outside
    assert not any(p.startswith(("notebook/", "cli/", "testing/")) for p in boot | final | image)


def _copy_tree(tmp_path: Path) -> tuple[Path, Path]:
    package = tmp_path / "vdsmlib"
    shutil.copytree(VDSMLIB_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    project = tmp_path / "project"
    project.mkdir()
    for name in fingerprints.IMAGE_PROJECT_FILES:
        shutil.copy(project_dir() / name, project / name)
    return package, project


def test_a_new_module_the_stage_code_imports_changes_the_fingerprints(tmp_path: Path) -> None:
    # In a copy of the tree: the wizard engine (boot code) starts to import a new module. No
    # list is edited; the module's own bytes are then part of start-ready and everything after.
    package, project = _copy_tree(tmp_path)
    params = load_params("sim")

    def compute() -> dict[str, str]:
        return fingerprints.compute(params, _base(), package_dir=package, project=project)

    before = compute()
    new = package / "wizard" / "pacing.py"
    new.write_text('"""How long to wait between two screens."""\n\nSETTLE_SECONDS = 10\n')
    assert compute() == before  # a module nobody imports is not stage code
    engine = package / "wizard" / "engine.py"
    engine.write_text(engine.read_text() + "\nfrom vdsmlib.wizard.pacing import SETTLE_SECONDS\n")
    with_import = compute()
    assert all(with_import[c] != before[c] for c in CHECKPOINTS)
    new.write_text('"""How long to wait between two screens."""\n\nSETTLE_SECONDS = 12\n')
    edited = compute()
    assert all(edited[c] != with_import[c] for c in CHECKPOINTS)  # its bytes count
    # a relative import is followed as well
    helper = package / "services" / "ports.py"
    helper.write_text("SMB = 445\n")
    apply = package / "services" / "api.py"
    apply.write_text(apply.read_text() + "\nfrom .ports import SMB\n")
    relative = compute()
    assert relative["start-ready"] == edited["start-ready"]  # services run after it
    assert relative["final"] != edited["final"]
    assert relative["image"] != edited["image"]


def test_editing_each_stage_file_invalidates_its_checkpoint_and_later_ones(
    tmp_path: Path,
) -> None:
    package, project = _copy_tree(tmp_path)
    params = load_params("sim")

    def compute() -> dict[str, str]:
        return fingerprints.compute(params, _base(), package_dir=package, project=project)

    def first_checkpoint(rel: str) -> str:
        for checkpoint in CHECKPOINTS:
            if rel in _rel(
                import_closure(fingerprints.STAGE_CODE[checkpoint], package_dir=package), package
            ):
                return checkpoint
        raise AssertionError(rel)

    covered = set().union(*(_rel(import_closure(fingerprints.STAGE_CODE[c])) for c in CHECKPOINTS))
    edits: list[tuple[Path, str]] = [
        (package / rel, first_checkpoint(rel)) for rel in sorted(covered)
    ]
    edits += [(package / name, "image") for name in fingerprints.IMAGE_ASSETS]
    edits += [(project / name, "image") for name in fingerprints.IMAGE_PROJECT_FILES]
    assert first_checkpoint("pipeline/boot.py") == "start-ready"
    assert first_checkpoint("wizard/engine.py") == "start-ready"
    assert first_checkpoint("services/api.py") == "final"
    assert first_checkpoint("pipeline/flatten.py") == "image"
    before = compute()
    for path, first in edits:
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        after = compute()
        path.write_bytes(original)
        changed = [c for c in CHECKPOINTS if before[c] != after[c]]
        expected = list(CHECKPOINTS[CHECKPOINTS.index(first) :])
        assert changed == expected, f"editing {path.relative_to(tmp_path)} changed {changed}"
    # a module outside every closure (the CLI) changes nothing
    cli = package / "cli" / "main.py"
    cli.write_bytes(cli.read_bytes() + b"\n# edited\n")
    assert compute() == before
