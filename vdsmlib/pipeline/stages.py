"""The stage functions by name, and :func:`run_stage`, what each stage notebook calls.

Each takes a :class:`StageContext` and returns a :class:`StageOutcome`, the same whether the
orchestrator calls it in-process or a stage notebook calls it in its own kernel: everything
stages share goes through the run folder.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from vdsmlib.errors import VdsmError
from vdsmlib.pipeline.boot import stage_boot, stage_prepare
from vdsmlib.pipeline.configure import stage_admin, stage_post_wizard, stage_services
from vdsmlib.pipeline.context import StageContext
from vdsmlib.pipeline.flatten import stage_flatten
from vdsmlib.pipeline.smoke import stage_smoke
from vdsmlib.pipeline.stage import StageOutcome, screen_entries

__all__ = ["STAGE_FUNCTIONS", "StageOutcome", "run_stage", "screen_entries"]


STAGE_FUNCTIONS: dict[str, Callable[[StageContext], Awaitable[StageOutcome]]] = {
    "prepare": stage_prepare,
    "boot": stage_boot,
    "admin": stage_admin,
    "post-wizard": stage_post_wizard,
    "services": stage_services,
    "flatten": stage_flatten,
    "smoke": stage_smoke,
}


async def run_stage(run_dir: str | os.PathLike[str], stage: str) -> StageOutcome:
    """Run one stage of the build in ``run_dir`` (what each stage notebook calls).

    The outcome is also written to ``<run_dir>/stages/<stage>.json`` for the orchestrator.
    """
    if stage not in STAGE_FUNCTIONS:
        raise VdsmError(f"unknown stage {stage!r} (stages: {', '.join(STAGE_FUNCTIONS)})")
    ctx = StageContext(Path(run_dir))
    outcome = await STAGE_FUNCTIONS[stage](ctx)
    outcome.write(ctx.run_dir, stage)
    return outcome
