"""What ``make build`` runs: a no-op check in this process, else the build notebook by papermill.

::

    python -m vdsmlib.cli.make NOTEBOOK OUTPUT [-p NAME VALUE] [-r NAME VALUE] [-y YAML]
        [-f FILE] [-b BASE64]

The parameter options are papermill's and are read as papermill reads them: the notebook's
parameters cell gives the defaults, then ``-b``, ``-f``, ``-y``, ``-p`` (``True``, ``None``,
``7`` and ``1.5`` become a bool, None, an int and a float) and ``-r`` (raw strings) override
them. From these, :func:`vdsmlib.pipeline.parameters.build_from_parameters` makes the build the
notebook would make, and then:

1. :meth:`~vdsmlib.pipeline.Build.run_if_noop` decides as the build does (prepare, then the
   plan). When the final image matches the current fingerprint, it records the no-op as the
   notebook would (``out/<run-id>/result.json`` with ``image_run_id``; ``out/latest`` stays on
   the run that made the image) and the image is printed: no papermill, no kernel.
2. Otherwise papermill executes NOTEBOOK into OUTPUT with the same parameters, its kernel
   started with transport encryption (:func:`~vdsmlib.pipeline.run.kernel_config`). The console
   gets what the kernel prints (papermill's ``stdout_file``/``stderr_file``): a line per stage
   as it starts and ends; the tables and evidence the notebook displays stay in OUTPUT. A
   failed build ends in the notebook's one line (the stage, the screen, the evidence) on
   stderr, not in papermill's traceback; a successful one prints the image last. A password
   parameter (``admin_password``) is not injected: the kernel gets it as
   ``VDSM_ADMIN_PASSWORD`` (:func:`split_secrets`), so OUTPUT never holds it.

The check can only shorten a build: whatever it cannot settle (work to do, an ``explore`` run,
any error) goes to the notebook, which decides, reports and records as always.

Exit status: 0 built (or nothing to do), 1 the build failed, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import base64
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from vdsmlib.evidence.record import BuildRecord, first_line

__all__ = [
    "SECRET_PARAMETERS",
    "main",
    "notebook_defaults",
    "papermill_parameters",
    "split_secrets",
]

log = logging.getLogger(__name__)

_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _NoDatesLoader(yaml.SafeLoader):
    """papermill's YAML loader (papermill.iorw.NoDatesSafeLoader): dates stay strings."""


_NoDatesLoader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _resolve_type(value: str) -> Any:
    """papermill's ``-p`` value rules (papermill.cli._resolve_type)."""
    if value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[value]
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def papermill_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters papermill's CLI would inject for these options, in papermill's order."""
    values: dict[str, Any] = {}
    for encoded in args.parameters_base64:
        values.update(yaml.load(base64.b64decode(encoded), Loader=_NoDatesLoader) or {})
    for path in args.parameters_file:
        values.update(yaml.load(Path(path).read_text(), Loader=_NoDatesLoader) or {})
    for text in args.parameters_yaml:
        values.update(yaml.load(text, Loader=_NoDatesLoader) or {})
    for name, value in args.parameters:
        values[name] = _resolve_type(value)
    for name, value in args.parameters_raw:
        values[name] = value
    return values


#: parameters that must not be written into the executed notebook, and the environment
#: variable the kernel reads each one from instead (:func:`vdsmlib.params.load_params`)
SECRET_PARAMETERS = {"admin_password": "VDSM_ADMIN_PASSWORD"}


def split_secrets(given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``given`` without its secret parameters, and the environment that carries them.

    papermill writes every parameter into the executed notebook (mode 0644 under the usual
    umask); a password moved to the kernel's environment never reaches it. An empty or
    non-string password stays a parameter: the notebook refuses it in one line naming it.
    """
    parameters = dict(given)
    environment: dict[str, str] = {}
    for name, variable in SECRET_PARAMETERS.items():
        value = parameters.get(name)
        if isinstance(value, str) and value:
            environment[variable] = parameters.pop(name)
    return parameters, environment


def notebook_defaults(notebook: Path) -> dict[str, Any]:
    """The values of ``notebook``'s cell tagged ``parameters`` (plain assignments of literals).

    Raises ValueError for anything else in that cell: then only the notebook knows its values.
    """
    cells = json.loads(notebook.read_text())["cells"]
    for cell in cells:
        if cell["cell_type"] == "code" and "parameters" in cell["metadata"].get("tags", []):
            values: dict[str, Any] = {}
            for node in ast.parse("".join(cell["source"])).body:
                if not (
                    isinstance(node, ast.Assign)
                    and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                ):
                    raise ValueError(f"{notebook}: its parameters cell holds more than literals")
                values[node.targets[0].id] = ast.literal_eval(node.value)
            return values
    raise ValueError(f"{notebook} has no cell tagged parameters")


def _noop(notebook: Path, values: Mapping[str, Any]) -> BuildRecord | None:
    """The no-op build's record, or None: work to do, or nothing the check can settle."""
    from vdsmlib.pipeline.parameters import build_from_parameters

    try:
        if values.get("explore"):
            return None  # restores a checkpoint: the notebook's business
        build = build_from_parameters(values)
        record = asyncio.run(build.run_if_noop())
    except Exception as err:  # the notebook run decides, and reports it properly
        log.debug("no-op check: %s: %s", type(err).__name__, err)
        return None
    if record is None:
        print(f"work to do ({build.work}): running {notebook}", flush=True)
        return None
    print(
        f"build ok in {record.seconds:.1f} s: nothing to do, the image was made by run "
        f"{record.image_run_id} (no kernel started)"
    )
    for stage in record.stages:
        print(f"{stage.name:<12} {stage.status:<8} {stage.seconds:7.1f} s  "
              f"{first_line(stage.detail, 120)}")  # fmt: skip
    print(f"record: {build.run_dir / 'result.json'}", flush=True)
    return record


def _quiet_noop(notebook: Path, values: Mapping[str, Any]) -> BuildRecord | None:
    """:func:`_noop` without vdsmlib's INFO lines: the check prints its outcome itself."""
    vdsmlib_log = logging.getLogger("vdsmlib")
    level = vdsmlib_log.level
    vdsmlib_log.setLevel(logging.WARNING)
    try:
        return _noop(notebook, values)
    finally:
        vdsmlib_log.setLevel(level)


def _execute(notebook: Path, output: Path, given: Mapping[str, Any]) -> int:
    """papermill on the notebook; 0 or 1 with one line on stderr (no papermill traceback)."""
    import nbclient.exceptions
    import papermill

    from vdsmlib.pipeline.run import kernel_config

    # the kernel (and the stage kernels it starts) inherit this process's environment
    parameters, environment = split_secrets(given)
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            progress_bar=False,
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
            config=kernel_config(),
        )
    except papermill.PapermillExecutionError as err:
        # The notebook's own last line (BuildFailed: stage, screen, evidence), or its error.
        line = first_line(err.evalue, 2000)
        if err.ename != "BuildFailed":
            line = f"build failed: {err.ename}: {line} (executed notebook: {output})"
        print(line, file=sys.stderr)
        return 1
    except nbclient.exceptions.DeadKernelError as err:
        print(f"build failed: the notebook's kernel died: {first_line(str(err))}", file=sys.stderr)
        return 1
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vdsmlib.cli.make",
        description="make build: a no-op check, else the build notebook through papermill",
    )
    parser.add_argument("notebook", type=Path, help="the build notebook (notebooks/build.ipynb)")
    parser.add_argument("output", type=Path, help="where the executed notebook goes")
    for flags, dest, nargs, metavar in (
        (("-p", "--parameters"), "parameters", 2, ("NAME", "VALUE")),
        (("-r", "--parameters_raw"), "parameters_raw", 2, ("NAME", "VALUE")),
        (("-y", "--parameters_yaml"), "parameters_yaml", None, "YAML"),
        (("-f", "--parameters_file"), "parameters_file", None, "FILE"),
        (("-b", "--parameters_base64"), "parameters_base64", None, "BASE64"),
    ):
        parser.add_argument(
            *flags, dest=dest, nargs=nargs, metavar=metavar, action="append", default=[]
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.output.parent.is_dir():
        # papermill would end in a traceback when it first saves the notebook
        print(
            f"make build: OUTPUT {args.output}: the folder {args.output.parent} does not exist "
            "(create it, or name an output notebook in a folder that exists)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT, datefmt="%H:%M:%S")
    logging.getLogger("papermill").setLevel(logging.WARNING)  # its lines only when they warn
    try:
        given = papermill_parameters(args)
    except (OSError, yaml.YAMLError, ValueError) as err:
        print(f"make build: bad parameters: {first_line(str(err))}", file=sys.stderr)
        return 2
    try:
        values = {**notebook_defaults(args.notebook), **given}
    except (OSError, ValueError, SyntaxError) as err:
        log.debug("no defaults from %s: %s", args.notebook, err)
        values = None  # papermill will say what is wrong with the notebook
    try:
        record = _quiet_noop(args.notebook, values) if values is not None else None
        if record is not None:
            print(record.image)
            return 0
        # the notebook prints its run folder first and the image last
        return _execute(args.notebook, args.output, given)
    except KeyboardInterrupt:
        print("make build: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
