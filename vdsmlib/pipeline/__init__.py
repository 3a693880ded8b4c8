"""The staged build: plan, run, stages, build base, flatten, preflight, janitor, publish.

::

    prepare -> boot -> [start-ready] -> admin -> post-wizard -> services -> [final]
            -> flatten -> smoke

:class:`Build` orchestrates (one lock per image, a janitor for a killed process, the record);
:func:`run_stage` runs one stage (what each stage notebook calls);
:func:`build_from_parameters` is the one mapping from parameters to a build.

    record = await build_from_parameters({"dsm_version": "sim"}).run()
"""

from vdsmlib.evidence.record import BuildRecord, StageRecord, load_record
from vdsmlib.pipeline.parameters import build_from_parameters
from vdsmlib.pipeline.plan import CHECKPOINT_AFTER, STAGES, Plan, make_plan
from vdsmlib.pipeline.preflight import PreflightError
from vdsmlib.pipeline.run import Build, StageError
from vdsmlib.pipeline.stages import StageOutcome, run_stage

__all__ = [
    "CHECKPOINT_AFTER",
    "STAGES",
    "Build",
    "BuildRecord",
    "Plan",
    "PreflightError",
    "StageError",
    "StageOutcome",
    "StageRecord",
    "build_from_parameters",
    "load_record",
    "make_plan",
    "run_stage",
]
