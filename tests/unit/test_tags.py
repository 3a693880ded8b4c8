"""A build with simulator knobs gets its pinned tag only: it never moves the shared moving tag."""

from __future__ import annotations

from vdsmlib.params import load_params
from vdsmlib.pipeline.flatten import final_tags

PASSWORD = {"admin_password": "S3cure-Passw0rd"}


def test_plain_build_gets_pinned_and_moving_tag() -> None:
    tags = final_tags(load_params("sim", PASSWORD), "tcg", "1234abcd" * 8)
    assert len(tags) == 2 and tags[1].endswith(":sim-tcg") and tags[0].endswith("-1234abcd")


def test_knob_build_gets_only_its_pinned_tag() -> None:
    params = load_params("sim", {**PASSWORD, "sim_knobs": {"SIM_EXTRA_DIALOG": "Check"}})
    tags = final_tags(params, "tcg", "1234abcd" * 8)
    assert tags == [final_tags(load_params("sim", PASSWORD), "tcg", "1234abcd" * 8)[0]]
