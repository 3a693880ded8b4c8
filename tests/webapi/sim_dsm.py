"""Run the simulated DSM (the simulator's guest app) on 127.0.0.1 as a subprocess."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
ADMIN_USER = "vdsm"
ADMIN_PASSWORD = "Sup3rSecret-42"
_LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass
class Sim:
    """A running simulated DSM."""

    url: str
    process: subprocess.Popen[str]
    output: list[str]

    def state(self) -> dict[str, Any]:
        resp = requests.get(f"{self.url}/sim/state", timeout=5)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def create_admin(self, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> None:
        """What the wizard's admin form sends."""
        resp = requests.post(
            f"{self.url}/sim/ui/admin",
            json={
                "device_name": "vdsm-test",
                "nas_account": user,
                "password": password,
                "password_confirm": password,
            },
            timeout=10,
        )
        body = resp.json()
        assert resp.status_code == 200 and body.get("ok"), body


def start_sim(env_overrides: dict[str, str]) -> Sim:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    env.update(env_overrides)
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [sys.executable, "-m", "vdsmlib.sim.guest", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    output: list[str] = []
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            output.append(line.rstrip())
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=20)
        except queue.Empty:
            process.kill()
            raise RuntimeError(f"sim guest did not start in 20s: {output}") from None
        if line is None:
            process.wait(5)
            raise RuntimeError(f"sim guest exited ({process.returncode}): {output}")
        match = _LISTENING.search(line)
        if match:
            return Sim(url=match.group(1), process=process, output=output)
