"""Timeouts scale with the accelerator: a real-DSM build under TCG (software emulation, about
10 times slower: virtual-dsm v7.41 src/proc.sh) waits ``timeouts.tcg_factor`` times as long,
and its final image's health check gives a login as much longer."""

from __future__ import annotations

from pathlib import Path

import pytest

from vdsmlib.params import Timeouts, available_targets, load_params
from vdsmlib.pipeline.context import RunState, StageContext
from vdsmlib.pipeline.flatten import env_instruction

REAL = [t for t in available_targets() if t != "sim"]


@pytest.mark.parametrize("target", REAL)
def test_real_dsm_waits_ten_times_as_long_under_tcg(target: str) -> None:
    timeouts = load_params(target).timeouts
    assert timeouts.tcg_factor == 10
    tcg = timeouts.for_accelerator("tcg")
    assert (tcg.boot, tcg.savevm, tcg.restore, tcg.health, tcg.request) == (
        timeouts.boot * 10,
        timeouts.savevm * 10,
        timeouts.restore * 10,
        timeouts.health * 10,
        timeouts.request * 10,
    )
    assert timeouts.for_accelerator("kvm") == timeouts
    # scaled once: a second scaling (a stage context of a stage context) changes nothing
    assert tcg.for_accelerator("tcg") == tcg


def test_the_simulators_timeouts_are_already_tcgs() -> None:
    timeouts = load_params("sim").timeouts
    assert timeouts.for_accelerator("tcg") == timeouts


def test_a_factor_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="tcg_factor"):
        Timeouts(tcg_factor=0.5)


@pytest.mark.parametrize(
    ("accelerator", "boot"), [("tcg", 18000.0), ("kvm", 1800.0), (None, 1800.0)]
)
def test_a_stage_waits_as_its_accelerator_needs(
    tmp_path: Path, accelerator: str | None, boot: float
) -> None:
    """Stages after prepare (which finds the accelerator) get the scaled timeouts."""
    RunState(run_id="r", dsm_version="7.2.2", accelerator=accelerator).save(tmp_path)
    assert StageContext(tmp_path).params.timeouts.boot == boot


def test_the_vm_environment_goes_into_the_image_verbatim() -> None:
    """Dockerfile ENV values in double quotes: \\, " and $ escaped (no substitution)."""
    text = env_instruction({"KVM": "N", "ODD": 'a "b" $HOME \\x'})
    assert text == 'ENV KVM="N" \\\n    ODD="a \\"b\\" \\$HOME \\\\x"'
