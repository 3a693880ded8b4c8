"""The staged build with checkpoints.

::

    prepare -> boot -> [start-ready] -> admin -> post-wizard -> services -> [final]
            -> flatten -> smoke

``Build`` orchestrates; ``run_stage`` runs one stage (what each stage notebook calls).
"""

from vdsmlib.build.checkpoints import CheckpointInfo, list_checkpoints
from vdsmlib.build.context import RunState, StageContext
from vdsmlib.build.plan import CHECKPOINT_AFTER, STAGES, Plan, make_plan
from vdsmlib.build.preflight import PreflightError
from vdsmlib.build.record import BuildRecord, StageRecord, load_record
from vdsmlib.build.run import EXECUTORS, Build, StageError
from vdsmlib.build.stages import StageOutcome, run_stage

__all__ = [
    "CHECKPOINT_AFTER",
    "EXECUTORS",
    "STAGES",
    "Build",
    "BuildRecord",
    "CheckpointInfo",
    "Plan",
    "PreflightError",
    "RunState",
    "StageContext",
    "StageError",
    "StageOutcome",
    "StageRecord",
    "list_checkpoints",
    "load_record",
    "make_plan",
    "run_stage",
]
