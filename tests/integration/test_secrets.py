"""A password given as a parameter stays out of every notebook and record a run leaves, but
the notebook papermill itself writes it into (run directly), which is made private (0600).

``make build`` hands ``admin_password`` to the build notebook's kernel as
``VDSM_ADMIN_PASSWORD`` (papermill would write a parameter into the executed notebook); the
stage notebooks get only ``run_dir`` and read the password from ``state.json`` (mode 0600).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

from tests.integration.conftest import TEST_REPOSITORY

ROOT = Path(__file__).parents[2]
BUILD_NOTEBOOK = ROOT / "notebooks" / "build.ipynb"


def _new_password() -> str:
    """One DSM accepts (upper, lower, digit, symbol) that appears nowhere else."""
    return f"Zq9-{secrets.token_hex(8)}"


def _files_holding(folder: Path, text: str) -> list[str]:
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and text.encode() in p.read_bytes()
    )


@pytest.mark.docker
def test_make_build_keeps_a_password_parameter_out_of_the_notebook_and_the_records(
    tmp_path: Path, sim_image: str
) -> None:
    """A real ``make build`` front end, papermill and kernel, failing fast after prepare: the
    password changes the final fingerprint, so no ``final`` checkpoint can match it and
    ``from_checkpoint final`` stops the run with its folder, record and report written."""
    password = _new_password()
    out = tmp_path / "out"
    out.mkdir()  # as the Makefile's build target does
    env = {k: v for k, v in os.environ.items() if k != "VDSM_ADMIN_PASSWORD"}
    # -r: the raw string, as `make build PAPERMILL_ARGS='-r admin_password "$SECRET"'` gives it
    argv = [sys.executable, "-m", "vdsmlib.cli.make", str(BUILD_NOTEBOOK), str(out / "build.ipynb")]
    argv += ["-p", "from_checkpoint", "final", "-p", "image_repository", TEST_REPOSITORY]
    argv += ["-p", "out_dir", str(out), "-r", "admin_password", password]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "no checkpoint 'final' with the current fingerprint" in proc.stderr, proc.stderr
    run_dirs = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(run_dirs) == 1, run_dirs
    run_dir = run_dirs[0]
    for name in ("result.json", "report.html"):
        assert (run_dir / name).is_file(), name
    # the kernel got the password (through its environment): the run's state holds it
    state = run_dir / "state.json"
    assert json.loads(state.read_text())["overrides"]["admin_password"] == password
    assert state.stat().st_mode & 0o777 == 0o600
    # and nothing else does: the executed notebook, the record, the report, the console
    assert _files_holding(out, password) == [str(state.relative_to(out))]
    assert password not in proc.stdout + proc.stderr
    cells = json.loads((out / "build.ipynb").read_text())["cells"]
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "admin_password" not in "".join(injected[0]["source"])


@pytest.mark.docker
def test_papermill_cli_run_directly_makes_its_notebook_private(
    tmp_path: Path, sim_image: str
) -> None:
    """``papermill notebooks/build.ipynb OUT -p admin_password X``: papermill writes the password
    into OUT; the notebook's first step makes OUT 0600 (papermill's later saves keep it), and
    nothing the run writes in its out folder holds it but ``state.json`` (0600). It fails fast
    after prepare, as above."""
    password = _new_password()
    out = tmp_path / "out"
    out.mkdir()
    executed = tmp_path / "executed.ipynb"  # relative to papermill's working directory
    env = {k: v for k, v in os.environ.items() if k != "VDSM_ADMIN_PASSWORD"}
    argv = [str(Path(sys.executable).with_name("papermill")), str(BUILD_NOTEBOOK), executed.name]
    argv += ["-p", "from_checkpoint", "final", "-p", "image_repository", TEST_REPOSITORY]
    argv += ["-p", "out_dir", str(out), "-p", "admin_password", password]
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, proc.stderr[-2000:]
    text = executed.read_text()
    assert "no checkpoint 'final' with the current fingerprint" in text, text[-2000:]
    assert executed.stat().st_mode & 0o777 == 0o600
    assert password in text  # papermill's parameters cell: the file is private instead
    assert "made it readable by you alone (mode 0600)" in text
    run_dirs = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(run_dirs) == 1, run_dirs
    for name in ("result.json", "report.html", "stages/prepare.json"):
        assert (run_dirs[0] / name).is_file(), name
    state = run_dirs[0] / "state.json"
    assert _files_holding(out, password) == [str(state.relative_to(out))]
    assert state.stat().st_mode & 0o777 == 0o600


def test_papermill_run_directly_says_it_wrote_the_password(tmp_path: Path) -> None:
    """papermill itself injects ``-p admin_password``; the notebook says so, and what to do."""
    password = _new_password()
    executed = tmp_path / "build.ipynb"
    with pytest.raises(papermill.PapermillExecutionError, match="unknown dsm_version"):
        papermill.execute_notebook(
            str(BUILD_NOTEBOOK),
            str(executed),
            # a target that does not exist: the notebook stops before any container
            parameters={"dsm_version": "no-such-target", "admin_password": password},
            cwd=str(ROOT / "notebooks"),
            progress_bar=False,
        )
    text = executed.read_text()
    assert password in text  # papermill's own parameter cell: out of our hands
    # papermill's Python API: no command line names the output file, so the notebook says so
    assert "could not be found here to make it private" in text
    assert "give it as VDSM_ADMIN_PASSWORD to keep it out" in text
