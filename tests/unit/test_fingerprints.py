"""Fingerprints: each covers what changes its stage, and nothing later changes earlier ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from vdsmlib.build import fingerprints
from vdsmlib.build.base import PreparedBase
from vdsmlib.build.fingerprint import files_digest, fingerprint
from vdsmlib.params import load_params

PROFILES = Path(__file__).parents[2] / "params" / "profiles" / "dsm-7.2.2"


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
    path = PROFILES / "post-wizard.yaml"
    params = load_params("sim")
    original = path.read_bytes()
    before = fingerprints.compute(params, _base())
    try:
        path.write_bytes(original + b"\n# a comment\n")
        after = fingerprints.compute(params, _base())
    finally:
        path.write_bytes(original)
    assert before["start-ready"] == after["start-ready"]
    assert before["final"] != after["final"]


def test_files_digest_covers_names_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1")
    first = files_digest([tmp_path])
    (tmp_path / "a").write_text("2")
    assert files_digest([tmp_path]) != first


def test_sources_digest_covers_the_named_files() -> None:
    from vdsmlib.build.fingerprint import VDSMLIB_DIR, sources_digest

    for name in (*fingerprints.BOOT_SOURCES, *fingerprints.CONFIGURE_SOURCES):
        assert (VDSMLIB_DIR / name).exists(), name
    assert sources_digest(["build/plan.py"]) != sources_digest(["build/record.py"])
    with pytest.raises(FileNotFoundError):
        sources_digest(["build/no_such_module.py"])
