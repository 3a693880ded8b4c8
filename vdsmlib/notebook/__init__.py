"""What the notebooks call: run a stage or the whole build and show its evidence
(:mod:`.display`), and step through a failed stage from its checkpoint (:mod:`.explore`).

Notebooks are thin clients: a parameters cell, a call into this package, the display of what it
returned.
"""

from vdsmlib.notebook.display import (
    BuildFailed,
    BuildResult,
    explore_panel,
    finish,
    log_to_output,
    run_build,
    run_stage_notebook,
    show_build_evidence,
    show_image,
)
from vdsmlib.pipeline.parameters import build_from_parameters

__all__ = [
    "BuildFailed",
    "BuildResult",
    "build_from_parameters",
    "explore_panel",
    "finish",
    "log_to_output",
    "run_build",
    "run_stage_notebook",
    "show_build_evidence",
    "show_image",
]
