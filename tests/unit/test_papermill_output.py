"""The build notebook's first step finds the notebook papermill writes and makes it 0600.

papermill's own click command parses the command line (papermill/cli.py at nteract/papermill
8351218, the same file as the installed 2.7.0); the parent process is a real process whose
command line is papermill's.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vdsmlib.notebook.papermill_output import (
    make_private,
    papermill_output_path,
    protect_parameter_password,
)


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (
            ["/v/bin/python", "/v/bin/papermill", "nb.ipynb", "o.ipynb", "-p", "a", "b"],
            "/w/o.ipynb",
        ),
        (["papermill", "nb.ipynb", "/abs/o.ipynb", "-r", "admin_password", "x"], "/abs/o.ipynb"),
        (
            ["python3", "-u", "-m", "papermill", "nb.ipynb", "sub/o.ipynb"],
            "/w/sub/o.ipynb",
        ),
        (
            ["python3", "-m", "papermill", "nb.ipynb", "/abs/o.ipynb", "--cwd", "nbs"],
            "/abs/o.ipynb",
        ),
        # papermill writes a relative path from where it started; with --cwd it has moved
        (["python3", "-m", "papermill", "nb.ipynb", "o.ipynb", "--cwd", "nbs"], None),
        (["papermill", "nb.ipynb", "-"], None),
        (["papermill", "nb.ipynb", "s3://bucket/o.ipynb"], None),
        (["papermill", "nb.ipynb", "o_{dsm_version}.ipynb"], None),
        (["python3", "-m", "vdsmlib.cli.make", "nb.ipynb", "o.ipynb"], None),
        (["/usr/bin/make", "build"], None),
        ([], None),
    ],
)
def test_output_path_from_papermills_command_line(cmdline: list[str], expected: str | None) -> None:
    found = papermill_output_path(cmdline, "/w")
    assert (str(found) if found else None) == expected


def test_make_private_changes_the_mode_and_creates_a_missing_file(tmp_path: Path) -> None:
    existing = tmp_path / "a.ipynb"
    existing.write_text("{}")
    existing.chmod(0o644)
    make_private(existing)
    assert existing.stat().st_mode & 0o777 == 0o600
    missing = tmp_path / "b.ipynb"
    make_private(missing)
    assert missing.stat().st_mode & 0o777 == 0o600 and missing.read_text() == ""
    # what papermill's local writer does afterwards keeps the mode
    with open(missing, "w", encoding="utf-8") as f:
        f.write("{}")
    assert missing.stat().st_mode & 0o777 == 0o600


@pytest.fixture
def papermill_parent(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A live process whose command line is papermill's, in ``tmp_path``."""
    script = tmp_path / "bin" / "papermill"
    script.parent.mkdir()
    script.write_text("import sys\nsys.stdin.read()\n")
    argv = [sys.executable, str(script), "nb.ipynb", "executed.ipynb", "-p", "admin_password", "x"]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdin=subprocess.PIPE)
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def test_the_parents_output_notebook_is_made_private(
    tmp_path: Path, papermill_parent: subprocess.Popen[bytes]
) -> None:
    executed = tmp_path / "executed.ipynb"
    executed.write_text('{"password": "x"}')
    executed.chmod(0o644)
    given = {"admin_password": "x", "PAPERMILL_OUTPUT_PATH": "executed.ipynb", "keep": False}
    line = protect_parameter_password(given, parent=papermill_parent.pid)
    assert executed.stat().st_mode & 0o777 == 0o600
    assert line.startswith(f"note: papermill wrote the admin_password parameter into {executed}")
    assert "PAPERMILL_OUTPUT_PATH" not in given and given["keep"] is False


def test_without_a_papermill_parent_it_warns(tmp_path: Path) -> None:
    """This test's own process is pytest, not papermill: no file to name, the warning stays;
    an absolute injected PAPERMILL_OUTPUT_PATH is used then."""
    line = protect_parameter_password({"admin_password": "x"})
    assert line.startswith("warning:") and "VDSM_ADMIN_PASSWORD" in line and "\n" not in line
    executed = tmp_path / "executed.ipynb"
    given = {"admin_password": "x", "PAPERMILL_OUTPUT_PATH": str(executed)}
    assert protect_parameter_password(given).startswith("note:")
    assert executed.stat().st_mode & 0o777 == 0o600


def test_nothing_is_done_without_a_password_parameter(tmp_path: Path) -> None:
    given = {"admin_password": None, "PAPERMILL_INPUT_PATH": "nb.ipynb"}
    assert protect_parameter_password(given) == ""
    assert given == {"admin_password": None}
