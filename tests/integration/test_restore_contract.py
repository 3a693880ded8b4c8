"""The final image's own contract, on the real final image of a simulator build: it carries every
variable that shaped its VM, checks before QEMU what a restore needs and refuses in one line
when this container lacks it, stops by itself on `docker stop`, and every start (also `docker
restart`) returns to the snapshot.

The image comes from ``builds.build()``: after ``test_build.py``'s build in the same session it
is a no-op; alone it resumes from the newest matching checkpoint on the engine (or builds).

What the refusals stand in for, in virtual-dsm v7.41 (vdsm/virtual-dsm tag v7.41): src/reset.sh
lowers CPU_CORES to the host's processors and exits 17 on too little memory, src/network.sh falls
back from NAT to user networking (a netdev the snapshot does not load), src/proc.sh exits 88
without /dev/kvm, and src/power.sh answers SIGTERM with DSM's own shutdown (up to 2 x 50 s, more
than `docker stop` waits: exit 137).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from tests.integration.conftest import Builds, free_port
from tests.poll import poll
from vdsmlib.docker import labels as L
from vdsmlib.params import load_params
from vdsmlib.pipeline import BuildRecord
from vdsmlib.pipeline.flatten import final_env, image_env
from vdsmlib.readiness import NotReady
from vdsmlib.webapi.client import DsmClient, DsmSession
from vdsmlib.webapi.errors import WebApiError

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SIM = load_params("sim")
NAT = {"devices": ["/dev/net/tun:/dev/net/tun:rwm"], "cap_add": ["NET_ADMIN"]}


@pytest.fixture(scope="module")
def final(builds: Builds) -> BuildRecord:
    record = builds.build(executor="inline")
    assert record.status == "ok" and record.image, record
    return record


@pytest.fixture
def started(client: docker.DockerClient, final: BuildRecord) -> Iterator[Any]:
    """``started(**run_options)``: a container of the final image, removed after the test."""
    made: list[Any] = []

    def start(**options: Any) -> Any:
        container = client.containers.run(
            final.image, detach=True, labels=L.owner_labels("test", final.run_id), **options
        )
        made.append(container)
        return container

    yield start
    for container in made:
        container.remove(force=True, v=True)


def refusal(container: Any) -> str:
    """The container's exit code is the check's (78) and its log one line naming the need."""
    code = container.wait(timeout=120)["StatusCode"]
    log = container.logs().decode(errors="replace")
    assert code == 78, (code, log)
    lines = log.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vdsm-ci: "), log
    # refused before QEMU, before anything of the base's entry point ran
    assert "QEMU" not in log and "Starting" not in log, log
    return lines[0]


def test_the_image_carries_every_variable_that_shaped_the_vm(
    client: docker.DockerClient, final: BuildRecord
) -> None:
    config = client.images.get(final.image).attrs["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    want = final_env(SIM, final.accelerator or "tcg")
    assert {k: env.get(k) for k in want} == want
    # and how the disks open, which is the container's to change (not in restore.conf)
    image = image_env(SIM, final.accelerator or "tcg")
    assert {k: env.get(k) for k in image} == image
    assert (image["DISK_CACHE"], image["DISK_IO"]) == ("unsafe", "threads")
    assert config["Entrypoint"] == ["/bin/bash", "/usr/local/bin/vdsm-ci-entry"]
    labels = config["Labels"]
    assert labels[L.RESTORE_RUN] == "--device /dev/net/tun --cap-add NET_ADMIN"
    assert labels[L.RESTORE_CPU_CORES] == want["CPU_CORES"]
    assert labels[L.RESTORE_RAM_SIZE] == want["RAM_SIZE"]
    assert labels[L.RESTORE_CPU_VENDOR] in ("GenuineIntel", "AuthenticAMD")
    # the base's own entry point runs after the check (the simulator twin's is virtual-dsm's)
    entry = client.containers.run(
        final.image, ["/etc/vdsm-ci/entrypoint"], entrypoint="cat", remove=True
    )
    assert entry.decode().splitlines() == ["/usr/bin/tini", "-s", "/run/entry.sh"]


def test_refused_without_tun_or_net_admin(started: Any) -> None:
    line = refusal(started(cap_add=["NET_ADMIN"]))
    assert "no /dev/net/tun" in line and "--device /dev/net/tun --cap-add NET_ADMIN" in line
    line = refusal(started(devices=NAT["devices"]))
    assert "no NET_ADMIN" in line and "--cap-add NET_ADMIN" in line


def test_refused_with_fewer_cpus_than_cpu_cores(started: Any) -> None:
    """``--cpus 0.5`` (CFS quota, cgroup v1 on this engine) below the image's CPU_CORES=1."""
    assert SIM.vm.cpu_cores == 1
    line = refusal(started(nano_cpus=500_000_000, **NAT))
    assert "CPU_CORES=1 but --cpus gives this container 0.50 CPUs" in line, line


def _contract(client: docker.DockerClient, image: str) -> str:
    out = client.containers.run(image, ["/etc/vdsm-ci/restore.conf"], entrypoint="cat", remove=True)
    return str(out.decode())


def _changed(conf: str, name: str, value: str) -> str:
    """``conf`` with the recorded value of ``name`` replaced (a contract this image could have)."""
    lines = [
        f"{line.split('=', 1)[0]}={value}" if line.startswith(f"{name}=") else line
        for line in conf.splitlines()
    ]
    assert lines != conf.splitlines(), f"{name} not in the contract"
    return "\n".join(lines) + "\n"


def test_refused_with_a_cpuset_smaller_than_cpu_cores(
    client: docker.DockerClient, final: BuildRecord, started: Any, tmp_path: Path
) -> None:
    """The simulator's image needs 1 core and no cpuset is smaller, so the contract read by
    the image's check says 2 (as a 2-core image's would), and ``--cpuset-cpus 0`` refuses it
    through the container's own /proc/self/status."""
    conf = tmp_path / "restore.conf"
    conf.write_text(_changed(_contract(client, str(final.image)), "RESTORE_ENV_CPU_CORES", "2"))
    container = started(
        cpuset_cpus="0",
        environment={"CPU_CORES": "2", "VDSM_CI_RESTORE_CONF": "/x/restore.conf"},
        volumes={str(tmp_path): {"bind": "/x", "mode": "ro"}},
        **NAT,
    )
    line = refusal(container)
    assert "CPU_CORES=2 but --cpuset-cpus lets this container use 1 CPU(s) (0)" in line, line


def test_refused_with_too_little_memory(started: Any) -> None:
    """``--memory 600m`` (the cgroup v1 limit on this engine): 512M guest + 500 MB is 989 MiB."""
    assert SIM.vm.ram == "512M"
    line = refusal(started(mem_limit="600m", **NAT))
    assert "--memory allows 600m but RAM_SIZE=512M needs 989m" in line, line
    assert "--memory=989m" in line


def test_a_kvm_image_on_another_cpu_vendor_is_refused(
    client: docker.DockerClient, final: BuildRecord, started: Any, tmp_path: Path
) -> None:
    """Reasoned from the labels: a KVM image records the build host's CPU vendor, and a host
    whose /proc/cpuinfo names another is refused. The simulator's image is TCG (any CPU does),
    so its contract is read as a KVM image's (KVM=Y), and the host's answer is a cpuinfo naming
    the other vendor."""
    vendor = client.images.get(final.image).labels[L.RESTORE_CPU_VENDOR]
    other = "AuthenticAMD" if vendor == "GenuineIntel" else "GenuineIntel"
    (tmp_path / "restore.conf").write_text(
        _changed(_contract(client, str(final.image)), "RESTORE_ENV_KVM", "Y")
    )
    real = Path("/proc/cpuinfo").read_text()
    (tmp_path / "cpuinfo").write_text(real.replace(vendor, other))
    env = {"KVM": "Y", "VDSM_CI_RESTORE_CONF": "/x/restore.conf", "VDSM_CI_CPUINFO": "/x/cpuinfo"}
    kvm: dict[str, Any] = {}
    if os.path.exists("/dev/kvm"):
        kvm["devices"] = [*NAT["devices"], "/dev/kvm:/dev/kvm:rwm"]
    else:  # the host's KVM is faked as well: a writable character device
        env["VDSM_CI_KVM"] = "/dev/null"
        kvm["devices"] = NAT["devices"]
    container = started(
        environment=env,
        volumes={str(tmp_path): {"bind": "/x", "mode": "ro"}},
        cap_add=NAT["cap_add"],
        **kvm,
    )
    line = refusal(container)
    assert f"under KVM on a {vendor} CPU and this host's is {other}" in line, line


def _qemu_drives(container: Any) -> list[str]:
    """The ``-drive`` arguments of the container's QEMU, from its /proc cmdline."""
    code, out = container.exec_run(
        ["bash", "-c", 'for p in /proc/[0-9]*; do tr "\\0" "\\n" <$p/cmdline; echo; done']
    )
    assert code == 0, out
    args = out.decode(errors="replace").split("\n")
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-drive"]


def _logged_in(container: Any, port: int) -> DsmSession:
    dsm = DsmClient(f"http://127.0.0.1:{port}", timeout=5)

    def login() -> DsmSession:
        if "SYNO.API.Auth" not in dsm.api_info("SYNO.API.Auth"):
            raise NotReady("SYNO.API.Info lists no SYNO.API.Auth yet")
        return dsm.login(SIM.admin.user, SIM.admin.password, version=3, syno_token=False)

    return poll(
        login,
        what="a login to the restored final image",
        timeout=SIM.timeouts.restore,
        retryable=(WebApiError, OSError, requests.RequestException),
        describe=lambda: container.logs(tail=30).decode(errors="replace"),
    )


def test_restart_returns_to_the_snapshot_and_stop_ends_it_by_itself(
    client: docker.DockerClient, started: Any
) -> None:
    """A share made in a running container is gone after `docker restart` (the start restores
    the snapshot again); `docker stop` ends the container by itself (not killed: exit 0)."""
    port = free_port()
    container = started(ports={"5000/tcp": ("127.0.0.1", port)}, **NAT)
    with _logged_in(container, port) as session:
        session.share_create("restart-probe")
        # every disk opened buffered (the image's DISK_CACHE/DISK_IO, read by virtual-dsm's
        # disk script: v7.41 src/disk.sh:6,10), the writes in -snapshot's overlays
        drives = _qemu_drives(container)
        assert len(drives) == 3 and all("cache=unsafe,aio=threads" in d for d in drives), drives
        assert "restart-probe" in [s["name"] for s in session.share_list()]
    container.restart(timeout=30)
    with _logged_in(container, port) as session:
        names = [s["name"] for s in session.share_list()]
    assert "restart-probe" not in names and "ci" in names, names
    begun = time.monotonic()
    container.stop(timeout=30)
    seconds = time.monotonic() - begun
    container.reload()
    state = container.attrs["State"]
    log = container.logs(tail=5).decode(errors="replace")
    assert state["ExitCode"] == 0 and not state["OOMKilled"], (state, log)
    assert "vdsm-ci: stopped" in log, log
    print(f"docker stop of a restored final image: {seconds:.1f} s, exit {state['ExitCode']}")
