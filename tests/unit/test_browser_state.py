"""The browser's saved session (Playwright storage state) is private while a run needs it and
keeps no cookie once the run has ended, also when the run was killed (the janitor)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.poll import poll
from vdsmlib.pipeline import janitor
from vdsmlib.readiness import NotReady
from vdsmlib.wizard.secrets import forget_run_cookies, session_ids, write_private

SID = "Qx7bW2nR5tYk9LmP0aZs"


def _state(*sids: str) -> str:
    """A storage state as Playwright saves it: DSM's ``id`` cookie and an origin."""
    cookies = [
        {"name": "id", "value": sid, "domain": "127.0.0.1", "path": "/", "httpOnly": True}
        for sid in sids
    ]
    origin = {"origin": "http://127.0.0.1:5000", "localStorage": [{"name": "x", "value": "1"}]}
    return json.dumps({"cookies": cookies, "origins": [origin]})


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_saved_session_is_private_from_its_first_byte(tmp_path: Path, umask_022: None) -> None:
    state = tmp_path / "browser-state.json"
    assert _mode(write_private(state, _state(SID))) == 0o600
    # a state already there with the umask's mode (as Playwright's own write leaves it)
    state.chmod(0o644)
    write_private(state, _state(SID, SID + "b"))
    assert _mode(state) == 0o600 and SID + "b" in state.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["browser-state.json"]  # no temporary left


def test_an_ended_run_keeps_no_cookie(tmp_path: Path, umask_022: None) -> None:
    run = tmp_path / "run"
    (run / "evidence").mkdir(parents=True)
    build_state = run / "browser-state.json"
    build_state.write_text(_state(SID))  # 0644: as a run killed before it was made private
    session_default = run / "evidence" / "storage-state.json"
    session_default.write_text(_state(SID + "2"))
    cut = run / "evidence" / "explore" / "storage-state.json"
    cut.parent.mkdir()
    cut.write_text(_state(SID + "3")[:40])  # cut short while written: part of a cookie
    half_written = run / f".browser-state.json.{os.getpid() + 1}.tmp"
    half_written.write_text(_state(SID + "4"))
    empty = tmp_path / "other" / "browser-state.json"  # another run's: not this folder's
    empty.parent.mkdir()
    empty.write_text(_state(SID + "5"))
    assert session_ids(run) >= {SID, SID + "2", SID + "4"}  # what the check below must remove

    changed = forget_run_cookies(run)

    assert sorted(changed) == sorted([build_state, session_default, cut, half_written])
    assert session_ids(run) == set()
    for state in (build_state, session_default):
        data = json.loads(state.read_text())
        assert data["cookies"] == [] and data["origins"], data  # kept, without cookies
        assert _mode(state) == 0o600
    assert not cut.exists() and not half_written.exists()
    assert SID + "5" in empty.read_text()
    assert forget_run_cookies(run) == []  # nothing left to drop
    assert forget_run_cookies(tmp_path / "missing") == []


def _ended(proc: subprocess.Popen[bytes]) -> int:
    code = proc.poll()
    if code is None:
        raise NotReady("the janitor still runs")
    return code


@pytest.mark.docker
def test_the_janitor_of_a_killed_run_drops_the_cookie(tmp_path: Path, umask_022: None) -> None:
    """A real janitor process watching a process killed by SIGKILL (no build: nothing of the
    run is on the engine, so it only records, cleans nothing and drops the cookie)."""
    run = tmp_path / "20260101-000000-dead"
    run.mkdir()
    state = run / "browser-state.json"
    state.write_text(_state(SID))
    build = subprocess.Popen(["sleep", "infinity"])
    watcher = janitor.spawn(run, run.name, pid=build.pid)
    try:
        build.send_signal(signal.SIGKILL)
        assert poll(lambda: _ended(watcher), what="the janitor to finish", timeout=120) == 0
    finally:
        build.kill()
        build.wait()
        watcher.kill()
        watcher.wait()
    assert json.loads(state.read_text())["cookies"] == [], state.read_text()
    assert _mode(state) == 0o600
    assert "cleaning up" in (run / "janitor.log").read_text()


def test_every_run_drops_the_cookie_when_it_ends(tmp_path: Path, umask_022: None) -> None:
    """What a build does last, whatever its outcome (here: a run failed after its admin stage
    saved the browser's session), without Docker."""
    from vdsmlib.pipeline.run import Build

    build = Build("sim", out_dir=tmp_path / "out")
    build.run_dir.mkdir(parents=True)
    state = build.run_dir / "browser-state.json"
    write_private(state, _state(SID))
    build.record.status, build.record.error = "failed", "stage post-wizard: a test's failure"
    build._finish_run_folder(build.run_dir / ".reserve")
    assert json.loads(state.read_text())["cookies"] == []
    assert session_ids(build.run_dir) == set()
    assert (build.run_dir / "report.html").is_file()  # the run's end, not something else
