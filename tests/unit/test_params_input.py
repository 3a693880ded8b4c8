"""Parameters that would quietly do something else: an empty secret, a path as the target."""

from __future__ import annotations

import pytest

from vdsmlib.params import ParamsError, load_params
from vdsmlib.pipeline.parameters import build_from_parameters


def test_a_password_left_out_is_the_params_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VDSM_ADMIN_PASSWORD", raising=False)
    default = load_params("sim").admin.password
    assert default
    assert load_params("sim", {"admin_password": None}).admin.password == default


@pytest.mark.parametrize("given", ["-r", "-f"])
def test_an_empty_password_given_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    # -r admin_password "$SECRET" and a YAML file with `admin_password: ""` both arrive as ""
    monkeypatch.delenv("VDSM_ADMIN_PASSWORD", raising=False)
    with pytest.raises(ParamsError) as err:
        load_params("sim", {"admin_password": ""})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("admin_password is empty") and "leave the parameter out" in message


def test_an_empty_password_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDSM_ADMIN_PASSWORD", "")
    with pytest.raises(ParamsError, match=r"VDSM_ADMIN_PASSWORD is set but empty.*unset it"):
        load_params("sim")


def test_the_build_refuses_an_empty_password_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The build notebook's parameters, as papermill hands them over (nothing runs yet)."""
    monkeypatch.setenv("VDSM_ADMIN_PASSWORD", "")
    with pytest.raises(ParamsError, match="VDSM_ADMIN_PASSWORD is set but empty"):
        build_from_parameters({"dsm_version": "sim", "admin_password": None})


@pytest.mark.parametrize(
    "version", ["../params/sim", "/etc/passwd", "sim/../sim", "sim.yaml/x", "", ".hidden"]
)
def test_dsm_version_is_a_name_never_a_path(version: str) -> None:
    with pytest.raises(ParamsError, match="must be a target name") as err:
        load_params(version)
    assert "\n" not in str(err.value)


def test_target_names_with_dots_and_dashes_still_resolve() -> None:
    assert load_params("sim").dsm_version == "sim"
    # papermill hands `-p dsm_version 7.2` over as a float: still a name, just not a target
    with pytest.raises(ParamsError, match=r"unknown dsm_version .7\.2.*did you mean 7\.2\.2"):
        load_params(7.2)
