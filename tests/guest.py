"""The simulated DSM's guest web app, run on the host as a subprocess: one helper for every test.

``python -m vdsm_sim.guest --port 0`` with ``SIM_*`` knobs; :func:`run_guest` yields a
:class:`GuestServer` once it listens and stops the process afterwards::

    with run_guest({"SIM_SCREENS": ""}) as guest:
        requests.get(guest.url + "/sim/state")
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.poll import poll
from vdsmlib.readiness import NotReady, ReadinessTimeout

REPO = Path(__file__).resolve().parents[1]
_LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass
class GuestServer:
    """A running guest process and where it listens (``url`` has no trailing slash)."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """Everything the guest wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def state(self) -> dict[str, Any]:
        """``GET /sim/state``: the guest's own view (admin, screens, services)."""
        resp = requests.get(f"{self.url}/sim/state", timeout=5)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def stop(self) -> None:
        """Terminate the process (kill it after 5 s); idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()


@contextlib.contextmanager
def run_guest(
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    *,
    port: int = 0,
    log_path: Path | None = None,
) -> Iterator[GuestServer]:
    """Start ``python -m vdsm_sim.guest`` on ``port`` (0: a free one) with ``SIM_*`` env.

    Knobs of the calling environment are not inherited: a test states the ones it wants. The
    guest's log (its request lines included) goes to ``log_path`` when given (and stays), else
    to a temporary file removed afterwards.
    """
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    child_env.update(env or {})
    # this checkout's vdsmlib and simulator (its own distribution, in simulator/)
    child_env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "simulator")])
    keep_log = log_path is not None
    if log_path is None:
        fd, log_name = tempfile.mkstemp(prefix="sim-guest-", suffix=".log")
        os.close(fd)
        log_path = Path(log_name)
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vdsm_sim.guest", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=child_env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    server = GuestServer(url="", proc=proc, log_path=log_path)

    def listening() -> str:
        match = _LISTENING.search(server.log())
        if match:
            return match.group(1).rstrip("/")
        if proc.poll() is not None:
            raise RuntimeError(f"guest exited with {proc.returncode}:\n{server.log()}")
        raise NotReady("no 'listening on' line in its log yet")

    try:
        try:
            server.url = poll(listening, what="the guest to listen", timeout=timeout, interval=0.05)
        except ReadinessTimeout as err:
            raise RuntimeError(f"guest did not listen within {timeout}s:\n{server.log()}") from err
        yield server
    finally:
        server.stop()
        if not keep_log:
            log_path.unlink(missing_ok=True)
