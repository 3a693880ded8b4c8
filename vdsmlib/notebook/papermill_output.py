"""A password given to papermill as a parameter: its executed notebook is made private (0600).

papermill writes every parameter into the executed notebook's injected-parameters cell and saves
that notebook before the kernel runs a cell (papermill 2.6/2.7, ``papermill/execute.py``:
``parameterize_notebook`` then ``execute_notebook_with_engine``, whose ``notebook_start`` saves
it), so ``papermill notebooks/build.ipynb OUT -p admin_password X`` puts the password in ``OUT``
(mode 0644 with the usual umask) before any of this project's code runs. The build notebook's
first step calls :func:`protect_parameter_password`: it finds ``OUT`` from the command line of
the process that started the kernel (papermill's own click command parses it, with
``make_context``), and makes it 0600 at once. papermill's later saves keep the mode: its local
writer opens the existing file with ``open(path, "w")`` (``papermill/iorw.py``,
``LocalHandler.write``). Nothing else the run writes holds the password: the stage notebooks get
only the run folder, and the password is read from ``state.json`` (0600).

Where no output file can be named (papermill's Python API, output to stdout or a URL, a path
template, a relative path with ``--cwd``), the notebook says that the password is in the
executed notebook and what to do instead (``VDSM_ADMIN_PASSWORD``, which ``make build`` uses).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["make_private", "papermill_output_path", "protect_parameter_password"]

#: what papermill's ``--inject-paths`` options add as parameters (not build parameters)
PAPERMILL_PATHS = ("PAPERMILL_INPUT_PATH", "PAPERMILL_OUTPUT_PATH")


def _papermill_arguments(cmdline: Sequence[str]) -> list[str] | None:
    """The arguments after ``papermill`` in a process's command line (``papermill ...``,
    ``python /venv/bin/papermill ...``, ``python -m papermill ...``), or None if it is not
    papermill's command line."""
    if not cmdline:
        return None
    if Path(cmdline[0]).name == "papermill":
        return list(cmdline[1:])
    if not Path(cmdline[0]).name.startswith("python"):
        return None
    rest = list(cmdline[1:])
    while rest and rest[0].startswith("-"):
        if rest[0] == "-m":
            return rest[2:] if rest[1:2] == ["papermill"] else None
        rest.pop(0)
    return rest[1:] if rest and Path(rest[0]).name == "papermill" else None


def papermill_output_path(cmdline: Sequence[str], cwd: str | Path) -> Path | None:
    """The output notebook of the papermill command line ``cmdline`` run in ``cwd``, parsed by
    papermill's own click command; None when ``cmdline`` is not papermill's or the output is not
    a local file that can be named here (``-``, a URL, a ``{parameter}`` template, or a relative
    path with ``--cwd``: papermill writes it relative to the directory it started in, and the
    process has moved to ``--cwd``)."""
    arguments = _papermill_arguments(cmdline)
    if arguments is None:
        return None
    import click
    from papermill.cli import papermill as command

    try:
        context = command.make_context("papermill", arguments, resilient_parsing=True)
    except click.ClickException:
        return None
    output = str(context.params.get("output_path") or "")
    if not output or output == "-" or "://" in output or "{" in output:
        return None
    path = Path(output)
    if not path.is_absolute():
        if context.params.get("cwd"):
            return None
        path = Path(cwd) / path
    return path


def make_private(path: Path) -> None:
    """Mode 0600 for ``path``; when it does not exist yet (papermill saves only at the end with
    ``--no-request-save-on-cell-execute``), an empty 0600 file that papermill's write keeps."""
    try:
        os.chmod(path, 0o600)
        return
    except FileNotFoundError:
        pass
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        os.chmod(path, 0o600)


def _parent_command(pid: int) -> tuple[list[str], str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part], cwd


def protect_parameter_password(
    given: MutableMapping[str, Any], *, parent: int | None = None
) -> str:
    """The build notebook's first step: papermill's injected paths are taken out of ``given``
    (they are not build parameters); when ``admin_password`` is among the parameters, the
    notebook papermill writes (found from the command line of ``parent``, the process that
    started this kernel, else from ``PAPERMILL_OUTPUT_PATH`` if absolute) is made 0600. Prints
    and returns one line saying what was done; ``""`` without a password parameter."""
    injected = {name: given.pop(name, None) for name in PAPERMILL_PATHS}
    if not given.get("admin_password"):
        return ""
    command = _parent_command(os.getppid() if parent is None else parent)
    path = papermill_output_path(*command) if command else None
    if path is None and injected["PAPERMILL_OUTPUT_PATH"]:
        candidate = Path(str(injected["PAPERMILL_OUTPUT_PATH"]))
        path = candidate if candidate.is_absolute() else None
    if path is None:
        line = (
            "warning: papermill wrote the admin_password parameter into this executed notebook "
            "and its output file could not be found here to make it private: give it as "
            "VDSM_ADMIN_PASSWORD to keep it out"
        )
    else:
        make_private(path)
        line = (
            f"note: papermill wrote the admin_password parameter into {path}: made it readable "
            "by you alone (mode 0600); give it as VDSM_ADMIN_PASSWORD to keep it out"
        )
    print(line, file=sys.stderr)
    return line
