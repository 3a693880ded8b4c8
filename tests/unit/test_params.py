"""Params: every target loads; bad input fails with one line saying what to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from vdsmlib.params import ParamsError, available_targets, coerce_version, load_params


def test_every_target_loads() -> None:
    targets = available_targets()
    assert {"sim", "7.2.2", "7.2.1", "7.1.1", "7.3.2"} <= set(targets)
    for target in targets:
        params = load_params(target)
        assert params.dsm_version == target
        assert params.admin.password  # present, policy-checked


def test_sim_is_the_simulator_and_real_targets_pull_a_pinned_base() -> None:
    sim = load_params("sim")
    assert sim.target == "sim" and sim.base.source == "sim-build" and sim.pat is None
    real = load_params("7.2.2")
    assert real.target == "dsm" and real.base.source == "registry"
    assert real.pat is not None and real.pat.size == 361010261
    assert real.pat.url.endswith("/7.2.2/72806/DSM_VirtualDSM_72806.pat")
    old = load_params("7.1.1").pat
    assert old is not None and old.url.endswith("/7.1.1/42962-1/DSM_VirtualDSM_42962.pat")


@pytest.mark.parametrize(
    ("given", "expected"), [(7.2, "7.2"), ("7.2.2", "7.2.2"), (72806, "72806")]
)
def test_papermill_types_are_coerced(given: object, expected: str) -> None:
    assert coerce_version(given) == expected


def test_unknown_version_names_known_ones_and_the_closest() -> None:
    with pytest.raises(ParamsError) as err:
        load_params(7.2)
    message = str(err.value)
    assert "unknown dsm_version '7.2'" in message
    assert "7.2.2" in message and "did you mean 7.2.2?" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"admin_password": "abc"}, "at least 8"),
        ({"admin_password": "alllowercase1"}, "mixed case"),
        ({"admin_user": "admin"}, "admin user"),
        ({"server_name": "bad name!"}, "server name"),
    ],
)
def test_dsm_policy_is_checked_before_anything_starts(overrides: dict, fragment: str) -> None:
    with pytest.raises(ParamsError) as err:
        load_params("sim", overrides)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_flat_overrides_and_sim_knobs() -> None:
    params = load_params(
        "sim",
        {
            "admin_user": "ciuser",
            "admin_password": "Another-Passw0rd",
            "sim_knobs": {"SIM_SCREEN_SEED": 7},
            "accelerator": "tcg",
            "server_name": "",  # empty means: keep the params value
        },
    )
    assert params.admin.user == "ciuser"
    assert params.env["SIM_SCREEN_SEED"] == "7"
    assert params.vm.accelerator == "tcg"
    assert params.admin.server_name == "vdsm-ci"


def test_sim_knobs_must_be_a_mapping() -> None:
    with pytest.raises(ParamsError, match="sim_knobs must be a mapping"):
        load_params("sim", {"sim_knobs": "SIM_SCREEN_SEED=7"})


def test_secrets_are_masked_in_public_dict() -> None:
    params = load_params("sim")
    assert params.public_dict()["admin"]["password"] == "***"
    assert params.admin.password not in repr(params)


def test_schema_errors_name_the_field(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "params" / "sim.yaml").read_text()
    (tmp_path / "bad.yaml").write_text(text.replace("ram: 512M", "ram: lots"))
    (tmp_path / "profiles" / "dsm-7.2.2").mkdir(parents=True)
    with pytest.raises(ParamsError, match=r"bad.yaml: vm.ram"):
        load_params("bad", params_dir=tmp_path)
