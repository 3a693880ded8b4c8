"""The final image's health check (``vdsmlib/pipeline/assets/healthcheck.sh``), run by real bash
against the simulated DSM in a network namespace laid out like a virtual-dsm container.

In virtual-dsm's NAT mode (the default; vdsm/virtual-dsm v7.41 src/network.sh, configureNAT)
the guest sits on a bridge inside the container at ``VM_NET_IP`` (20.20.20.21), nothing answers
on the container's 127.0.0.1:5000, and after a ``-loadvm`` restore ``/run/shm/dsm.url`` is
absent (src/reset.sh removes it at every start; only a booting guest makes print.sh write it).
A namespace with a bridge holding 20.20.20.21/24 gives the same route table: the guest's
network on a link of its own, and the DSM Web API served only at the guest's address.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.poll import poll
from vdsmlib.readiness import NotReady

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "vdsmlib" / "pipeline" / "assets" / "healthcheck.sh"
USER = "vdsm"
PASSWORD = "Sup3rSecret-42"
GUEST = "20.20.20.21"

pytestmark = [
    pytest.mark.needs_root,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None,
        reason="needs root and iproute2 (network namespaces); .ci/run runs it as root",
    ),
]


@dataclass
class Netns:
    name: str

    def run(
        self, *argv: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    def serve_dsm(self, host: str) -> subprocess.Popen[str]:
        """The simulated DSM on ``host``:5000 inside the namespace, with its admin created."""
        # the simulator package (simulator/vdsm_sim) and the vdsmlib it imports its facts from
        env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT / "simulator"), str(ROOT)))}
        env = {k: v for k, v in env.items() if not k.startswith("SIM_")}
        proc = subprocess.Popen(
            [
                *("ip", "netns", "exec", self.name, sys.executable, "-m", "vdsm_sim.guest"),
                *("--host", host, "--port", "5000"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        create = (
            "import requests, sys, time\n"
            "for _ in range(100):\n"
            "    try:\n"
            f"        r = requests.post('http://{host}:5000/sim/ui/admin', json={{"
            f"'device_name': 'vdsm-test', 'nas_account': '{USER}', 'password': '{PASSWORD}', "
            f"'password_confirm': '{PASSWORD}'}}, timeout=5)\n"
            "        sys.exit(0 if r.json().get('ok') else 1)\n"
            "    except requests.ConnectionError:\n"
            "        time.sleep(0.1)\n"
            "sys.exit(2)\n"
        )
        done = self.run(sys.executable, "-c", create)
        if done.returncode != 0:
            proc.kill()
            raise AssertionError(f"the simulated DSM did not start: {done.stderr}")
        return proc


@pytest.fixture
def netns() -> Iterator[Netns]:
    name = f"vdsm-ci-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    ns = Netns(name)
    try:
        assert ns.run("ip", "link", "set", "lo", "up").returncode == 0
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def nat_layout(ns: Netns) -> None:
    """The guest's network on a link of its own, as virtual-dsm's bridge puts it."""
    for argv in (
        ("ip", "link", "add", "guest0", "type", "bridge"),
        ("ip", "address", "add", f"{GUEST}/24", "dev", "guest0"),
        ("ip", "link", "set", "guest0", "up"),
    ):
        done = ns.run(*argv)
        assert done.returncode == 0, done.stderr


def health(
    ns: Netns,
    tmp_path: Path,
    *,
    password: str = PASSWORD,
    dsm_url: str | None = None,
    relogin: int | None = None,
    wait: int = 0,
) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "health.conf"
    conf.write_text(f"HEALTH_USER={USER}\nHEALTH_PASSWORD={password}\nGUEST_ADDRESS={GUEST}\n")
    url_file = tmp_path / "dsm.url"
    url_file.unlink(missing_ok=True)
    if dsm_url is not None:
        url_file.write_text(dsm_url + "\n")
    env = {
        "PATH": os.environ["PATH"],
        "VDSM_CI_HEALTH_CONF": str(conf),
        "VDSM_CI_DSM_URL": str(url_file),
        "VDSM_CI_HEALTH_STATE": str(tmp_path / "health.ok"),
        "HEALTH_WAIT": str(wait),
        **({} if relogin is None else {"HEALTH_RELOGIN": str(relogin)}),
    }
    return ns.run("bash", str(SCRIPT), env=env)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_nat_restore_without_dsm_url_reaches_the_guest(netns: Netns, tmp_path: Path) -> None:
    """No dsm.url, nothing on 127.0.0.1:5000: DSM is found at the guest's address."""
    nat_layout(netns)
    dsm = netns.serve_dsm(GUEST)
    try:
        assert netns.run("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5000").returncode != 0
        done = health(netns, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        wrong = health(netns, tmp_path, password="Wrong-Passw0rd")
        assert wrong.returncode == 1
        assert f"login at {GUEST}:5000 failed" in wrong.stdout
    finally:
        stop(dsm)


def test_user_mode_falls_back_to_localhost(netns: Netns, tmp_path: Path) -> None:
    """No route to the guest (QEMU user networking): 127.0.0.1:5000, where QEMU forwards."""
    dsm = netns.serve_dsm("127.0.0.1")
    try:
        done = health(netns, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        stop(dsm)


def test_dsm_url_wins_when_present(netns: Netns, tmp_path: Path) -> None:
    nat_layout(netns)
    dsm = netns.serve_dsm("127.0.0.2")
    try:
        assert health(netns, tmp_path, dsm_url="127.0.0.2:5000").returncode == 0
        # without it, the guest's address is asked, where nothing answers
        started = time.monotonic()
        done = health(netns, tmp_path)
        assert done.returncode == 1 and f"no answer from DSM at {GUEST}:5000" in done.stdout
        assert time.monotonic() - started < 12
    finally:
        stop(dsm)


def test_after_a_login_only_the_port_is_checked_until_relogin(netns: Netns, tmp_path: Path) -> None:
    """Docker runs the check often; after one login a run only connects, until HEALTH_RELOGIN."""
    nat_layout(netns)
    dsm = netns.serve_dsm(GUEST)
    try:
        assert health(netns, tmp_path).returncode == 0
    finally:
        stop(dsm)
    state = tmp_path / "health.ok"
    valid = state.read_text()
    assert valid.split()[1] == f"{GUEST}:5000"
    # Something that answers on DSM's port but takes no login (every path 404).
    (tmp_path / "empty").mkdir()
    other = subprocess.Popen(
        [
            *("ip", "netns", "exec", netns.name, sys.executable, "-m", "http.server"),
            *("--bind", GUEST, "5000", "--directory", str(tmp_path / "empty")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def listening() -> bool:
        if netns.run("bash", "-c", f"exec 3<>/dev/tcp/{GUEST}/5000").returncode != 0:
            raise NotReady("nothing listens yet")
        return True

    try:
        poll(listening, what="http.server to listen", timeout=30, interval=0.1)
        remembered = health(netns, tmp_path)
        assert remembered.returncode == 0, remembered.stdout
        # the remembered login has expired: a run logs in again, which fails here
        due = health(netns, tmp_path, relogin=0)
        assert due.returncode == 1 and f"login at {GUEST}:5000 failed" in due.stdout
        # another container start (or address, or configuration): a login, not the port
        state.write_text("1 " + valid.split(" ", 1)[1])
        restarted = health(netns, tmp_path)
        assert restarted.returncode == 1 and "login at" in restarted.stdout
    finally:
        stop(other)
    # a remembered login, but nothing answers: unhealthy, and the next run logs in again
    state.write_text(valid)
    gone = health(netns, tmp_path)
    assert gone.returncode == 1 and "accepts no connection" in gone.stdout
    assert not state.exists()


def test_a_run_before_the_first_login_waits_for_it(netns: Netns, tmp_path: Path) -> None:
    """Docker starts a run only every --interval: the first one waits for DSM to take a login,
    so `healthy` comes when the login works, not an interval later."""
    nat_layout(netns)
    conf = tmp_path / "health.conf"
    conf.write_text(f"HEALTH_USER={USER}\nHEALTH_PASSWORD={PASSWORD}\nGUEST_ADDRESS={GUEST}\n")
    env = {
        "PATH": os.environ["PATH"],
        "VDSM_CI_HEALTH_CONF": str(conf),
        "VDSM_CI_DSM_URL": str(tmp_path / "dsm.url"),
        "VDSM_CI_HEALTH_STATE": str(tmp_path / "health.ok"),
        "HEALTH_WAIT": "120",
    }
    waiting = subprocess.Popen(
        ["ip", "netns", "exec", netns.name, "bash", str(SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    dsm = None
    try:
        assert waiting.poll() is None  # nothing answers yet: the run goes on trying
        dsm = netns.serve_dsm(GUEST)
        out, _ = waiting.communicate(timeout=150)
        assert waiting.returncode == 0, out
        assert (tmp_path / "health.ok").exists()
    finally:
        waiting.kill()
        if dsm is not None:
            stop(dsm)
