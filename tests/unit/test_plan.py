"""The resume decision: which stages run, resume or skip for what exists."""

from __future__ import annotations

import pytest

from vdsmlib.pipeline.plan import STAGES, make_plan


def test_nothing_exists_runs_everything_from_a_cold_boot() -> None:
    plan = make_plan(final_image_exists=False, checkpoints={})
    assert plan.resume_from is None
    assert plan.to_run() == list(STAGES[1:])


def test_matching_final_image_is_a_no_op() -> None:
    plan = make_plan(final_image_exists=True, checkpoints={"start-ready": True, "final": True})
    assert set(plan.actions.values()) == {"skipped"}
    assert plan.to_run() == []


def test_start_ready_matches_resumes_boot_and_runs_the_rest() -> None:
    plan = make_plan(final_image_exists=False, checkpoints={"start-ready": True, "final": False})
    assert plan.resume_from == "start-ready"
    assert plan.actions["boot"] == "resumed"
    assert plan.to_run() == ["admin", "post-wizard", "services", "flatten", "smoke"]


def test_final_checkpoint_matches_only_flatten_and_smoke_run() -> None:
    plan = make_plan(final_image_exists=False, checkpoints={"start-ready": True, "final": True})
    assert plan.resume_from == "final"
    assert plan.to_run() == ["flatten", "smoke"]


def test_no_cache_runs_everything_even_when_all_exists() -> None:
    plan = make_plan(final_image_exists=True, checkpoints={"start-ready": True}, no_cache=True)
    assert plan.to_run() == list(STAGES[1:])


def test_from_checkpoint_forces_the_restore_point() -> None:
    plan = make_plan(
        final_image_exists=True,
        checkpoints={"start-ready": True, "final": True},
        from_checkpoint="start-ready",
    )
    assert plan.resume_from == "start-ready"
    assert "admin" in plan.to_run()


def test_from_checkpoint_must_exist_and_be_known() -> None:
    with pytest.raises(LookupError):
        make_plan(final_image_exists=False, checkpoints={}, from_checkpoint="final")
    with pytest.raises(ValueError, match="unknown checkpoint"):
        make_plan(final_image_exists=False, checkpoints={}, from_checkpoint="admin")
