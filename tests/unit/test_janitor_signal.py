"""The janitor names the signal that killed a build's process while it can still read it."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.poll import poll
from vdsmlib.pipeline.janitor import exit_signal, how_it_ended
from vdsmlib.readiness import NotReady


def _zombie(proc: subprocess.Popen[bytes]) -> None:
    state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    if state != "Z":
        raise NotReady(f"process {proc.pid} is in state {state}")


def test_a_killed_process_not_yet_reaped_names_its_signal() -> None:
    proc = subprocess.Popen(["sleep", "infinity"])
    try:
        assert exit_signal(proc.pid) is None  # running
        proc.send_signal(signal.SIGKILL)
        poll(lambda: _zombie(proc), what="the process to end", timeout=30)
        assert exit_signal(proc.pid) == "SIGKILL"
        assert how_it_ended(exit_signal(proc.pid)) == "was killed by SIGKILL"
    finally:
        proc.kill()
        proc.wait()
    # reaped: the status is gone, the record says what it can
    assert exit_signal(proc.pid) is None
    assert how_it_ended(None).startswith("ended without finishing (killed")


def test_a_process_that_exited_names_no_signal() -> None:
    proc = subprocess.Popen(["false"])
    try:
        poll(lambda: _zombie(proc), what="the process to end", timeout=30)
        assert exit_signal(proc.pid) is None
    finally:
        proc.wait()
