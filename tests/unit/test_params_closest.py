"""An unknown dsm_version names the targets there are and the one most likely meant."""

from __future__ import annotations

import pytest

from vdsmlib.params import ParamsError, closest_target, load_params

TARGETS = ["7.1.1", "7.2.1", "7.2.2", "7.3.2", "sim"]


@pytest.mark.parametrize(
    ("given", "meant"),
    [("7.2", "7.2.2"), ("7.1", "7.1.1"), ("7.3.1", "7.3.2"), ("simm", "sim"), ("xyz", None)],
)
def test_closest_target(given: str, meant: str | None) -> None:
    assert closest_target(given, TARGETS) == meant


def test_papermill_float_names_the_targets_and_the_closest() -> None:
    # papermill -p dsm_version 7.2 delivers the float 7.2
    with pytest.raises(ParamsError) as exc:
        load_params(7.2, {"admin_password": "S3cure-Passw0rd"})
    message = str(exc.value)
    assert "unknown dsm_version '7.2'" in message
    assert "known: 7.1.1, 7.2.1, 7.2.2, 7.3.2, sim" in message
    assert message.endswith("did you mean 7.2.2? (-p dsm_version 7.2.2)")
    assert "\n" not in message
