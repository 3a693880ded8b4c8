"""JupyterLab on this project (``make lab``): where a person steps through a stage.

The lab is rooted at the project directory, so ``notebooks/`` and the run folders in ``out/``
are both in its file browser. A notebook a person steps through is a copy in a run folder
(:func:`step_notebook`), never the committed one; :func:`keep_checkout_clean` (the contents
manager's pre-save hook) saves a committed notebook without outputs, so nothing a session does
dirties the checkout. ``make lab RUN=out/<run-id>`` opens the failed stage's copy::

    python -m vdsmlib.notebook.lab out/20261203-121313-4247
    out/20261203-121313-4247/notebooks/post-wizard.step.ipynb
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vdsmlib.errors import VdsmError
from vdsmlib.evidence.record import STEPPED_STAGES, load_record
from vdsmlib.project import ProjectError, notebooks_dir, project_dir

__all__ = [
    "STEP_SUFFIX",
    "keep_checkout_clean",
    "main",
    "show_stage_notebook",
    "step_notebook",
    "strip_outputs",
]

#: a stage notebook's copy to step through: ``<run>/notebooks/<stage>.step.ipynb``
STEP_SUFFIX = ".step.ipynb"


def strip_outputs(nb: Any) -> bool:
    """Clear the outputs, execution counts and widget state of notebook JSON ``nb`` in place;
    True if there was any."""
    changed = False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            changed = True
        cell["outputs"] = []
        cell["execution_count"] = None
    metadata = nb.get("metadata", {})
    if "widgets" in metadata:
        del metadata["widgets"]
        changed = True
    return changed


def _committed(os_path: Path) -> bool:
    try:
        committed = notebooks_dir().resolve()
    except ProjectError:
        return False
    return os_path.resolve().parent == committed


def keep_checkout_clean(model: dict[str, Any], path: str, contents_manager: Any, **_: Any) -> None:
    """The contents manager's pre-save hook: a committed notebook (``notebooks/*.ipynb``) is
    saved without outputs (JupyterLab's autosave would write them into the checkout)."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    root = Path(getattr(contents_manager, "root_dir", "."))
    if _committed(root / path.lstrip("/")):
        strip_outputs(model["content"])


def _failed_stage(run_dir: Path) -> str:
    record = load_record(run_dir / "result.json")
    stage = (record.failure or {}).get("stage") or next(
        (s.name for s in record.stages if s.status == "failed"), None
    )
    if stage is None:
        raise VdsmError(
            f"run {run_dir} did not fail in a stage (status {record.status}): pass the stage, "
            f"e.g. --stage post-wizard"
        )
    return str(stage)


def step_notebook(run_dir: Path, stage: str | None = None) -> Path:
    """Write ``<run_dir>/notebooks/<stage>.step.ipynb``: the committed stage notebook with
    ``run_dir`` and ``stepping = True`` set (default stage: the one the run failed in).
    An existing copy is kept (it is the person's work)."""
    stage = stage or _failed_stage(run_dir)
    if stage not in STEPPED_STAGES:
        raise VdsmError(
            f"stage {stage} has no screens to step through (these have: "
            f"{', '.join(STEPPED_STAGES)}); its executed notebook is {run_dir}/notebooks/"
        )
    copy = run_dir / "notebooks" / f"{stage}{STEP_SUFFIX}"
    if copy.exists():
        return copy
    nb = json.loads((notebooks_dir() / f"{stage}.ipynb").read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            cell["source"] = (
                f"run_dir = {str(run_dir)!r}  # this run folder\n"
                "stepping = True  # the step cell performs one screen each time it runs"
            )
    strip_outputs(nb)
    copy.parent.mkdir(exist_ok=True)
    copy.write_text(json.dumps(nb, indent=1) + "\n")
    return copy


def show_stage_notebook(run_dir: Path, stage: str | None = None) -> Path | None:
    """What ``explore.ipynb`` shows first: a link to the failed stage's notebook to step
    through (:func:`step_notebook`), from the kernel's folder; None when the stage has none."""
    import os

    from vdsmlib.notebook.display import _markdown

    try:
        copy = step_notebook(run_dir, stage)
    except VdsmError as err:
        _markdown(str(err))
        return None
    link = os.path.relpath(copy, Path.cwd())
    _markdown(
        f"Step through the failed stage: open [{copy.name}]({link}) (in the run folder "
        f"`{run_dir}`), or `make lab RUN={run_dir}`.",
        f"step through the failed stage: {copy}",
    )
    return copy


def main(argv: list[str] | None = None) -> int:
    """Print the lab path (relative to the project) of a run's stage notebook to step through."""
    parser = argparse.ArgumentParser(prog="python -m vdsmlib.notebook.lab")
    parser.add_argument("run", help="the run folder, e.g. out/latest or out/<run-id>")
    parser.add_argument("--stage", help="the stage (default: the one the run failed in)")
    args = parser.parse_args(argv)
    from vdsmlib.notebook.steps import resolve_run_dir

    try:
        run_dir = resolve_run_dir(args.run)
        copy = step_notebook(run_dir, args.stage)
        root = project_dir().resolve()
    except (VdsmError, OSError) as err:
        print(f"make lab: {err}", file=sys.stderr)
        return 2
    try:
        print(copy.relative_to(root))
    except ValueError:
        print(copy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
