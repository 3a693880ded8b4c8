"""The final image's entry point (``vdsmlib/pipeline/assets/restore-entry.sh``), run by real bash
as PID 1 of a PID namespace of its own (``unshare --pid --fork --mount-proc``), as in a
container: it runs the restore check, then the base's entry point; on SIGTERM it ends QEMU with
SIGTERM first (QEMU flushes its disks), then every other process, and exits 0 at once.

The stand-in of the base's entry point ignores SIGTERM, as virtual-dsm v7.41's entry.sh does in
effect (src/power.sh traps it and waits up to 2 x 50 s for DSM's own shutdown); the QEMU
stand-in is a process whose argv[0] is ``qemu-system-x86_64`` (v7.41 renames QEMU's comm with
``-name ...,process=``, so the entry point finds QEMU by its command line).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.poll import poll
from vdsmlib.readiness import NotReady

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "vdsmlib" / "pipeline" / "assets" / "restore-entry.sh"

#: an ordinary user gets the PID namespace inside a user namespace of its own (root in it)
USERNS = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    argv = ["unshare", *USERNS, "--pid", "--fork", "--mount-proc", "true"]
    return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0


pytestmark = pytest.mark.skipif(
    not _namespaces_work(),
    reason="needs unshare and a PID namespace with its own /proc (root, or user namespaces)",
)

#: the base's entry point: records its arguments, starts "QEMU", then ignores SIGTERM
ENTRY = """\
echo "$*" > "$DIR/ran"
[ "${1:-}" = quick ] && exit 3
( exec -a qemu-system-x86_64 bash "$DIR/qemu.sh" ) &
echo $! > "$DIR/qemu.pid"
trap '' TERM
exec tail -f /dev/null
"""
#: QEMU: on SIGTERM it flushes its disks and exits
QEMU = """\
trap 'echo flushed > "$DIR/flushed"; kill $!; exit 0' TERM
tail -f /dev/null &
wait
"""


def start(tmp_path: Path, *args: str, check: int = 0) -> subprocess.Popen[str]:
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    (tmp_path / "entry.sh").write_text(ENTRY)
    (tmp_path / "qemu.sh").write_text(QEMU)
    (tmp_path / "check.sh").write_text(
        "exit 0\n" if check == 0 else f"echo 'vdsm-ci: refused' >&2; exit {check}\n"
    )
    (etc / "entrypoint").write_text(f"/bin/bash\n{tmp_path / 'entry.sh'}\n")
    (etc / "cmd").write_text("default-cmd\n")
    env = {
        "PATH": os.environ["PATH"],
        "DIR": str(tmp_path),
        "VDSM_CI_ETC": str(etc),
        "VDSM_CI_RESTORE_CHECK": str(tmp_path / "check.sh"),
    }
    argv = ["unshare", *USERNS, "--pid", "--fork", "--mount-proc", "bash", str(SCRIPT), *args]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def pid1(proc: subprocess.Popen[str]) -> int:
    """The host pid of the namespace's PID 1 (the child unshare forked)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    if not children:
        raise NotReady("unshare has not forked yet")
    return int(children[0])


def test_sigterm_ends_qemu_first_then_everything_at_once(tmp_path: Path) -> None:
    proc = start(tmp_path)
    try:
        poll(
            lambda: (tmp_path / "qemu.pid").read_text() or None,
            what="the QEMU stand-in",
            timeout=30,
            interval=0.05,
            retryable=(FileNotFoundError,),
        )
        os.kill(poll(lambda: pid1(proc), what="PID 1", timeout=10), signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, (out, err)
    assert "vdsm-ci: stopped" in out
    assert (tmp_path / "flushed").read_text() == "flushed\n", "QEMU got no SIGTERM"
    assert (tmp_path / "ran").read_text() == "default-cmd\n"


def test_a_refused_check_runs_nothing(tmp_path: Path) -> None:
    proc = start(tmp_path, check=78)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 78 and err == "vdsm-ci: refused\n", (out, err)
    assert not (tmp_path / "ran").exists()


def test_run_arguments_replace_the_cmd_and_the_exit_code_is_the_entrys(tmp_path: Path) -> None:
    proc = start(tmp_path, "quick", "x")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, (out, err)
    assert (tmp_path / "ran").read_text() == "quick x\n"
