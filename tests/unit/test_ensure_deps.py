"""tools/ensure-deps.sh: installs the engine when only its client exists, never a second dockerd.

The script runs for real with a PATH of its own: the tools it looks for are small scripts there,
so that it can be shown a machine without a daemon binary, and ``apt-get``/``dockerd`` record
what they were asked instead of changing this machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "tools" / "ensure-deps.sh"
PRESENT: tuple[str, ...] = ("qemu-img", "qemu-system-x86_64", "chromium", "ffmpeg")
PRESENT += ("debootstrap", "docker-registry", "node", "npm", "smbclient", "nfs-cp", "iscsi-ls")
PRESENT += ("ip",)
REAL = ("bash", "seq", "sleep", "pgrep", "pidof", "nohup", "cat")


def _machine(tmp_path: Path, *, dockerd: bool) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in REAL:
        found = shutil.which(name)
        assert found, name
        (bin_dir / name).symlink_to(found)

    def stub(name: str, body: str) -> None:
        path = bin_dir / name
        path.write_text(f"#!{shutil.which('bash')}\n{body}\n")
        path.chmod(0o755)

    for name in PRESENT:
        stub(name, "exit 0")
    # the script's root branch, shown to any user: this machine's root is not needed to read it
    stub("id", f'[ "$1" = -u ] && echo 0 || exec {shutil.which("id")} "$@"')
    stub("docker", 'echo "docker $*" >> ' + str(log) + "; exit 1")  # a client, no engine
    stub("apt-get", 'echo "apt-get $*" >> ' + str(log))
    if dockerd:
        stub("dockerd", 'echo "dockerd started" >> ' + str(log))
    return bin_dir, log


def _run(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    # the machine is bin_dir alone: not this machine's /usr/sbin, where its dockerd is
    env.update(PATH=str(bin_dir), VDSM_CI_SBIN="", VDSM_CI_DOCKER_WAIT="2")
    return subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_docker_client_without_daemon_installs_the_engine(tmp_path: Path) -> None:
    bin_dir, log = _machine(tmp_path, dockerd=False)
    result = _run(bin_dir)
    calls = log.read_text().splitlines()
    assert any(c.startswith("apt-get install") and "docker.io" in c.split() for c in calls), calls
    assert result.returncode == 1  # the recording apt-get installed nothing
    assert result.stderr.strip().startswith("Docker is not running"), result.stderr


@pytest.mark.docker
def test_a_dockerd_that_runs_but_does_not_answer_is_waited_for_never_doubled(
    tmp_path: Path,
) -> None:
    assert subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0
    bin_dir, log = _machine(tmp_path, dockerd=True)
    result = _run(bin_dir)
    calls = log.read_text().splitlines()
    assert "dockerd started" not in calls, "a second dockerd was started"
    assert "waiting up to 2 s" in result.stdout
    assert not any(c.startswith("apt-get") for c in calls), calls
    assert result.returncode == 1


def test_an_ordinary_user_finds_what_debian_keeps_in_sbin(tmp_path: Path) -> None:
    """A `docker` group member's PATH lacks /usr/sbin, where Debian installs dockerd and
    debootstrap: the script looks there too instead of calling them missing."""
    bin_dir, _ = _machine(tmp_path, dockerd=False)
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    (bin_dir / "debootstrap").rename(sbin / "debootstrap")
    (sbin / "dockerd").write_text(f"#!{shutil.which('bash')}\nexit 0\n")
    (sbin / "dockerd").chmod(0o755)
    for name, body in (("id", "echo 1000"), ("docker", "exit 0")):  # a user; an engine answers
        (bin_dir / name).unlink()
        (bin_dir / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env.update(PATH=str(bin_dir), VDSM_CI_DOCKER_WAIT="2")

    def run(sbin_dirs: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / "bash"), str(SCRIPT)],
            env={**env, "VDSM_CI_SBIN": sbin_dirs},
            capture_output=True,
            text=True,
            timeout=60,
        )

    found = run(str(sbin))
    assert found.returncode == 0, found.stderr
    assert "missing" not in found.stderr
    unseen = run("")
    assert unseen.returncode == 1
    assert unseen.stderr.startswith("missing: docker.io debootstrap"), unseen.stderr
