"""The stage graph and the resume decision (pure logic, no Docker).

::

    prepare -> boot -> [start-ready] -> admin -> post-wizard -> services -> [final]
            -> flatten -> smoke

Brackets are checkpoints: a VM's saved state and disks inside committed images. The build
resumes from the newest checkpoint whose fingerprint matches and that passes its checks
(:func:`plan_with_checks`); when the final image matches, nothing runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "CHECKPOINT_AFTER",
    "STAGES",
    "Plan",
    "Status",
    "make_plan",
    "plan_with_checks",
]

Status = Literal["ran", "resumed", "skipped", "failed", "pending"]

#: every stage, in order
STAGES: tuple[str, ...] = (
    "prepare",
    "boot",
    "admin",
    "post-wizard",
    "services",
    "flatten",
    "smoke",
)

#: the checkpoint each stage ends in (the VM is snapshotted and committed there)
CHECKPOINT_AFTER: Mapping[str, str] = {"boot": "start-ready", "services": "final"}

#: the stages whose work a checkpoint contains
_COVERED_BY: Mapping[str, tuple[str, ...]] = {
    "start-ready": ("boot",),
    "final": ("boot", "admin", "post-wizard", "services"),
}


@dataclass
class Plan:
    """What to do for each stage, and where to start the VM from."""

    actions: dict[str, Status] = field(default_factory=dict)
    #: the checkpoint to restore for the first VM stage that runs, or None for a cold boot
    resume_from: str | None = None
    reason: str = ""
    #: checkpoint name -> the line of its check (passed or refused)
    checks: dict[str, str] = field(default_factory=dict)
    #: the checkpoints refused by their check (name -> why), left out of this plan
    refused: dict[str, str] = field(default_factory=dict)
    #: stage -> why it runs although it would have resumed (its checkpoint was refused)
    fell_back: dict[str, str] = field(default_factory=dict)

    def to_run(self) -> list[str]:
        return [s for s in STAGES if self.actions.get(s) == "pending"]


def make_plan(
    *,
    final_image_exists: bool,
    checkpoints: Mapping[str, bool],
    no_cache: bool = False,
    from_checkpoint: str | None = None,
    stages: Sequence[str] = STAGES,
) -> Plan:
    """Decide each stage's action from which artefacts with matching fingerprints exist.

    ``checkpoints`` maps checkpoint name (``start-ready``, ``final``) to whether an image with the
    current fingerprint exists. ``no_cache`` runs everything; ``from_checkpoint`` forces the
    restore point (it must exist).
    """
    plan = Plan(actions={s: "pending" for s in stages})
    plan.actions["prepare"] = "ran"  # prepare always checks its inputs; the caller may downgrade
    if no_cache:
        plan.reason = "no_cache: every stage runs"
        return plan
    if from_checkpoint is not None:
        if from_checkpoint not in _COVERED_BY:
            known = ", ".join(_COVERED_BY)
            raise ValueError(f"unknown checkpoint {from_checkpoint!r} (known: {known})")
        if not checkpoints.get(from_checkpoint):
            raise LookupError(f"checkpoint {from_checkpoint!r} with the current fingerprint")
        return _resume(plan, from_checkpoint, f"from_checkpoint={from_checkpoint}")
    if final_image_exists:
        for stage in stages:
            plan.actions[stage] = "skipped"
        plan.reason = "the final image matches the current fingerprint: nothing to do"
        return plan
    for name in ("final", "start-ready"):
        if checkpoints.get(name):
            return _resume(plan, name, f"checkpoint {name} matches the current fingerprint")
    plan.reason = "no checkpoint matches: cold boot"
    return plan


def _resume(plan: Plan, checkpoint: str, reason: str) -> Plan:
    for stage in _COVERED_BY[checkpoint]:
        plan.actions[stage] = "resumed"
    plan.resume_from = checkpoint
    plan.reason = reason
    return plan


def plan_with_checks(
    *,
    final_image_exists: bool,
    checkpoints: Collection[str],
    check: Callable[[str], tuple[bool, str]],
    no_cache: bool = False,
    from_checkpoint: str | None = None,
    stages: Sequence[str] = STAGES,
) -> Plan:
    """:func:`make_plan`, with the checkpoint it resumes from checked before it is trusted.

    ``checkpoints`` names the checkpoints with the current fingerprint; ``check(name)`` says
    whether that one may be restored, and a line saying why. A refused checkpoint is left out
    and the plan made again: the build falls back to the checkpoint before it, or a cold boot,
    in the same run. The stages that would have resumed from it say so (``fell_back``). A
    ``from_checkpoint`` that is refused is an error (LookupError), not a fallback.
    """
    available = set(checkpoints)
    refused: dict[str, str] = {}
    checks: dict[str, str] = {}
    first: Plan | None = None
    while True:
        try:
            plan = make_plan(
                final_image_exists=final_image_exists,
                checkpoints={name: True for name in available},
                no_cache=no_cache,
                from_checkpoint=from_checkpoint,
                stages=stages,
            )
        except LookupError:
            if from_checkpoint in refused:
                raise LookupError(
                    f"checkpoint {from_checkpoint!r} that passes its checks "
                    f"({refused[from_checkpoint]})"
                ) from None
            raise
        first = first or plan
        if plan.resume_from is None:
            break
        ok, line = check(plan.resume_from)
        checks[plan.resume_from] = line
        if ok:
            break
        refused[plan.resume_from] = line
        available.discard(plan.resume_from)
    plan.checks, plan.refused = checks, refused
    if refused:
        to = f"checkpoint {plan.resume_from}" if plan.resume_from else "a cold boot"
        why = "; ".join(refused.values())
        for stage, action in first.actions.items():
            if action == "resumed" and plan.actions.get(stage) != "resumed":
                plan.fell_back[stage] = (
                    f"would have resumed from checkpoint {first.resume_from}; fell back to {to}: "
                    f"{why}"
                )
        plan.reason = f"{plan.reason}; fell back to {to}: {why}"
    if plan.resume_from in checks:
        plan.reason = f"{plan.reason}; {checks[plan.resume_from]}"
    return plan
