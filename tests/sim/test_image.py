"""The DSM simulator image honours the vdsm/virtual-dsm container contract of each release it twins.

Real dockerd, real QEMU (TCG) in the container, the real guest application. Every container,
image and directory a test creates is removed at the end. Each test names the file of
vdsm/virtual-dsm at the tag whose behaviour it pins (the twin rule of the architecture); for
7.65, whose common scripts are qemus/qemu v7.48's (v7.65 Dockerfile:6), the file of qemus/qemu
at v7.48 where 7.65 delegates to it (docs/virtual-dsm-releases.md collects the facts).

The tests that pin behaviour that differs between the releases run against both twins (the
``twin`` fixture, over ``UPSTREAMS``), each expecting its release's behaviour. The others run
against the 7.41 twin only: the data plane and the accelerator probe are the guest's and the
project's own, the same on both twins; the NAT and user-mode tests pin 7.41's networking, which
the 7.65 twin keeps except for the guest address (it does not twin qemus/qemu v7.48's
``QEMU_DNAT`` chain, src/network.sh:1283-1413, nor its passt user mode, :906-1004).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import docker
import docker.errors
import pytest
import requests
from qemu.qmp import QMPClient
from vdsm_sim.image.build import SIM_REPOSITORY, UPSTREAMS, SimImage, ensure_sim_image

from vdsmlib import services
from vdsmlib.docker import labels as L
from vdsmlib.dsm import iscsi as iscsi_facts
from vdsmlib.params import load_params
from vdsmlib.qemu.accel import probe_accelerator
from vdsmlib.services import dataplane
from vdsmlib.services.dataplane import IscsiSession
from vdsmlib.webapi.client import DsmClient

pytestmark = pytest.mark.docker

# Without a PAT, 7.41 installs its default PAT (DSM 7.2.2-72806) and names the disks after it
# (src/install.sh); params/sim.yaml's base.disk_base says the same.
BASE = "DSM_VirtualDSM_72806"
GUEST_IP = "20.20.20.21"
LABELS = {"vdsm-ci.owner": "vdsm-ci", "vdsm-ci.kind": "test"}
# What virtual-dsm's default NAT networking needs, as params/7.2.2.yaml and params/sim.yaml say.
NAT = {"devices": ["/dev/net/tun:/dev/net/tun:rwm"], "cap_add": ["NET_ADMIN"]}
INFO_QUERY = "/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query&query=ALL"
ADMIN = {
    "device_name": "simtest",
    "nas_account": "simadmin",
    "password": "Sim-Test-Passw0rd",
    "password_confirm": "Sim-Test-Passw0rd",
}
BOOT_TIMEOUT = 120


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    try:
        engine = docker.from_env()
        engine.ping()
    except docker.errors.DockerException as err:
        pytest.fail(f"no Docker engine ({err}): apt-get install docker.io and start dockerd")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def sim_image(client: docker.DockerClient) -> SimImage:
    return ensure_sim_image(client)


class Twin(NamedTuple):
    """The simulator image twinning one vdsm/virtual-dsm release."""

    upstream: str
    image: SimImage


@pytest.fixture(scope="module", params=UPSTREAMS)
def twin(request: pytest.FixtureRequest, client: docker.DockerClient) -> Twin:
    upstream = str(request.param)
    return Twin(upstream, ensure_sim_image(client, upstream=upstream))


# Where the twinned releases differ: what each does, and where at its tag.
# QEMU failing to start (an unknown device, an unknown -loadvm snapshot): the container's code.
QEMU_FAILS = {
    # v7.41 src/entry.sh:29-30: QEMU daemonizes; when it fails the container exits 15
    "7.41": 15,
    # v7.65 src/entry.sh:50-64: QEMU runs in the foreground, `wait` takes its code and finish
    # (src/power.sh:20-50) exits with it: QEMU's own 1
    "7.65": 1,
}
# The script attaching the boot and system disks raw, the lines the build base patches to qcow2.
DISK_SCRIPT = {
    # v7.41 src/disk.sh:548-549
    "7.41": ("/run/disk.sh", ('createDevice "$BOOT"', 'createDevice "$SYSTEM"')),
    # v7.65 src/prepare.sh:15-16 (from 7.63 on)
    "7.65": ("/run/prepare.sh", ('createDevice "$boot"', 'createDevice "$system"')),
}


def nat_guest_address(container: Any, upstream: str) -> str:
    """The guest's NAT address without VM_NET_IP. 7.41: always 20.20.20.21 (v7.41
    src/network.sh:17). 7.65: 172.30.<third octet of the container's address>.2, 172.31 when the
    container is in 172.30 (qemus/qemu v7.48 src/network.sh:368-400, used at :1823); the
    container sees no other 172.x route on the default bridge, so no candidate is skipped."""
    if upstream == "7.41":
        return GUEST_IP
    container.reload()
    address = str(container.attrs["NetworkSettings"]["IPAddress"])
    second = 31 if address.startswith("172.30.") else 30
    return f"172.{second}.{address.split('.')[2]}.2"


@pytest.fixture
def tmp_dirs() -> Iterator[Callable[[str], Path]]:
    made: list[Path] = []

    def make(prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"vdsm-test-{prefix}-"))
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def containers(client: docker.DockerClient) -> Iterator[list[Any]]:
    """Containers to remove after the test (with their anonymous volumes)."""
    made: list[Any] = []
    yield made
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, container: Any = None) -> Any:
    """Poll ``check`` every 0.2 s until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if container is not None:
            container.reload()
            if container.status == "exited":
                logs = container.logs().decode(errors="replace")
                pytest.fail(f"container exited while waiting for {what}:\n{logs[-3000:]}")
        if time.monotonic() > deadline:
            logs = container.logs().decode(errors="replace") if container is not None else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{logs[-3000:]}")
        time.sleep(0.2)


def get(port: int, path: str) -> requests.Response | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)
    except requests.RequestException:
        return None


def api_ready(port: int) -> Callable[[], bool]:
    def check() -> bool:
        answer = get(port, INFO_QUERY)
        if answer is None or answer.status_code != 200:
            return False
        try:
            return bool(answer.json().get("success"))
        except ValueError:
            return False  # still the wait page

    return check


def login(port: int) -> dict[str, Any]:
    answer = requests.get(
        f"http://127.0.0.1:{port}/webapi/auth.cgi",
        params={
            "api": "SYNO.API.Auth",
            "version": "3",
            "method": "login",
            "account": ADMIN["nas_account"],
            "passwd": ADMIN["password"],
            "format": "sid",
        },
        timeout=10,
    )
    result: dict[str, Any] = answer.json()
    return result


def run_sim(
    client: docker.DockerClient,
    image: str,
    containers: list[Any],
    env: dict[str, str],
    *,
    nat: bool = True,
    **kwargs: Any,
) -> tuple[Any, int]:
    """Start the image with port 5000 published on a free loopback port (NAT options unless
    ``nat=False``)."""
    port = free_port()
    container = client.containers.run(
        image,
        detach=True,
        environment={"KVM": "N", **env},
        ports={"5000/tcp": ("127.0.0.1", port)},
        labels=LABELS,
        **({**NAT, **kwargs} if nat else kwargs),
    )
    containers.append(container)
    return container, port


def exec_out(container: Any, *cmd: str) -> str:
    code, output = container.exec_run(list(cmd))
    text = output.decode(errors="replace")
    assert code == 0, f"{cmd} failed ({code}): {text}"
    return str(text)


def curl_inside(container: Any, url: str) -> tuple[int, str]:
    """``curl`` in the container: (curl's exit code, HTTP status or '')."""
    code, output = container.exec_run(
        ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", url]
    )
    return code, output.decode(errors="replace").strip()


def host_helper_answer(container: Any) -> dict[str, Any]:
    """What the host helper answers print.sh (127.0.0.1:2210/read?command=10)."""
    answer: dict[str, Any] = json.loads(
        exec_out(container, "curl", "-s", "-m", "5", "http://127.0.0.1:2210/read?command=10")
    )
    return answer


def _claim(socket_path: Path) -> None:
    """QEMU, root in its container, made the socket 0755: an ordinary user (the suite runs as
    one in CI) has the container that mounts its folder hand it over, as the build does."""
    if os.access(socket_path, os.W_OK):
        return
    engine = docker.from_env()
    try:
        for container in engine.containers.list():
            for mount in container.attrs.get("Mounts", []):
                if mount.get("Source") == str(socket_path.parent):
                    where = f"{mount['Destination']}/{socket_path.name}"
                    container.exec_run(["chown", f"{os.getuid()}:{os.getgid()}", where])
                    return
    finally:
        engine.close()


async def _qmp(socket_path: Path, command: str, **arguments: Any) -> Any:
    await asyncio.to_thread(_claim, socket_path)
    qmp = QMPClient("vdsm-test")
    await qmp.connect(str(socket_path))
    try:
        return await qmp.execute(command, arguments or None)
    finally:
        await qmp.disconnect()


def test_qemu_major_version_is_the_pinned_bases(client: docker.DockerClient, twin: Twin) -> None:
    """7.41: v7.41 Dockerfile:12 FROM debian:trixie-slim + Debian's qemu-system-x86 (:48).
    7.65: FROM scratch + qemux/qemu:7.48 (v7.65 Dockerfile:4,6), which is FROM
    debian:trixie-slim too (qemus/qemu v7.48 Dockerfile:3).

    params/7.2.2.yaml records 7.41's QEMU version (base.qemu_version); a pin that moves QEMU must
    move the simulator with it. The 7.65 twin must differ in QEMU's version: qemux/qemu 7.48
    installs QEMU 11.1 from a Debian snapshot (qemus/qemu v7.48 Dockerfile:15-16,76-77), which
    the locally made trixie base (no registry, no snapshot archive here) does not have; both
    twins run trixie's QEMU, the one params pin.
    """
    sim_image = twin.image
    pinned = load_params("7.2.2").base.qemu_version
    assert pinned, "params/7.2.2.yaml has no base.qemu_version"
    labels = client.images.get(sim_image.ref).labels
    assert labels["vdsm-ci.upstream"] == f"vdsm/virtual-dsm:{twin.upstream}", labels
    output = client.containers.run(
        sim_image.ref,
        entrypoint=["qemu-system-x86_64", "--version"],
        remove=True,
        network_mode="none",
        labels=LABELS,
    ).decode()
    match = re.search(r"version (\d+)\.(\d+)", output)
    assert match, output
    assert match.group(1) == pinned.split(".")[0], (output, pinned)
    assert sim_image.qemu_version.split(".")[0] == pinned.split(".")[0]
    debian, release = (
        client.containers.run(
            sim_image.ref,
            entrypoint=["cat", "/etc/debian_version", "/run/version"],
            remove=True,
            labels=LABELS,
        )
        .decode()
        .split()
    )
    assert debian.startswith("13."), debian  # trixie
    assert release == twin.upstream  # what the container scripts branch on


async def test_nat_boot_wait_page_only_while_installing_then_guest_behind_eth0(
    client: docker.DockerClient,
    sim_image: SimImage,
    containers: list[Any],
    tmp_dirs: Callable[[str], Path],
) -> None:
    """src/network.sh (configureNAT, configureDNS; nginx stopped before QEMU), src/reset.sh
    (dsm.url removed, nginx started), src/install.sh (disk names, wait page while installing),
    src/print.sh (dsm.url = ip:port), src/config.sh (virtio-balloon-pci), all at v7.41."""
    storage, qmp_dir = tmp_dirs("storage"), tmp_dirs("qmp")
    started = time.monotonic()
    container, port = run_sim(
        client,
        sim_image.ref,
        containers,
        {
            "SIM_HOSTNAME": "sim-test-host",
            "SIM_INSTALL_SECONDS": "8",
            # 7.41 reads no QMP variable: QMP comes through ARGUMENTS (src/config.sh)
            "ARGUMENTS": "-qmp unix:/qmp/qmp.sock,server=on,wait=off",
        },
        volumes={
            str(storage): {"bind": "/storage", "mode": "rw"},
            str(qmp_dir): {"bind": "/qmp", "mode": "rw"},
        },
    )

    # While installing: nginx's wait page on 5000 (every other path: 404, like nginx there).
    first = wait_for("the wait page on port 5000", lambda: get(port, "/"), 30, container)
    assert first.status_code == 200
    assert "<title>Virtual DSM</title>" in first.text
    assert "Please wait while Virtual DSM is being installed" in first.text
    early = get(port, INFO_QUERY)
    assert early is not None and early.status_code == 404

    wait_for(
        "the guest's Web API through the published port", api_ready(port), BOOT_TIMEOUT, container
    )
    boot_seconds = time.monotonic() - started
    # From now on port 5000 is the guest's: the wait page is gone for good.
    page = get(port, "/")
    assert page is not None and "Please wait while Virtual DSM" not in page.text
    state = requests.get(f"http://127.0.0.1:{port}/sim/state", timeout=5).text
    assert "sim-test-host" in state  # the SIM_* knob reached the guest

    # NAT: the guest is 20.20.20.21 on dockerbridge; only eth0 traffic is DNATed to it, so
    # nothing inside the container answers on 127.0.0.1:5000.
    assert curl_inside(container, f"http://{GUEST_IP}:5000/") == (0, "200")
    code, status = curl_inside(container, "http://127.0.0.1:5000/")
    assert code == 7 and status == "000", (code, status)
    rules = exec_out(container, "iptables", "-t", "nat", "-S")
    assert f"-i eth0 -p tcp -j DNAT --to-destination {GUEST_IP}" in rules, rules
    assert f"-i eth0 -p udp -j DNAT --to-destination {GUEST_IP}" in rules, rules
    assert "-o eth0 -j MASQUERADE" in rules, rules
    assert "20.20.20.1/24" in exec_out(container, "ip", "-4", "addr", "show", "dockerbridge")
    leases = exec_out(container, "cat", "/var/lib/misc/dnsmasq.leases")
    mac = (storage / "dsm.mac").read_text().strip()
    assert re.fullmatch(r"02:11:32(:[0-9A-F]{2}){3}", mac), mac
    assert f"{mac} {GUEST_IP}" in leases, leases
    assert f"eth0 {GUEST_IP}/24 by DHCP" in container.logs().decode(errors="replace")

    # dsm.url: written once the booting guest reported its address to the host helper.
    url = wait_for(
        "/run/shm/dsm.url",
        lambda: (
            container.exec_run(["cat", "/run/shm/dsm.url"]).output.decode().strip()
            if container.exec_run(["test", "-s", "/run/shm/dsm.url"]).exit_code == 0
            else ""
        ),
        30,
        container,
    )
    assert url == f"{GUEST_IP}:5000"
    assert host_helper_answer(container)["status"] == "success"

    assert (storage / "dsm.ver").read_text().strip() == BASE
    assert (storage / f"{BASE}.boot.img").stat().st_size > 0
    assert (storage / f"{BASE}.system.img").stat().st_size > 0
    assert (storage / "data.img").stat().st_size == 2 * 1024**3
    assert "guest app started" in container.logs().decode(errors="replace")

    pci = await _qmp(qmp_dir / "qmp.sock", "query-pci")
    qdev_ids = {d.get("qdev_id") for bus in pci for d in bus["devices"]}
    assert "balloon0" in qdev_ids, qdev_ids

    stop_started = time.monotonic()
    container.stop(timeout=20)
    container.reload()
    # src/power.sh v7.41: a stop signal asks the guest to shut down through the host helper
    # (command=6); the guest powers off, and the container exits with the status the handler
    # was entered with: the `wait` it interrupted in src/entry.sh, 128 + SIGTERM.
    logs = container.logs().decode(errors="replace")
    assert container.attrs["State"]["ExitCode"] == 143, logs[-2000:]
    assert "Virtual DSM is now ready to shutdown" in logs, logs[-2000:]
    assert "shutdown requested by the host" in logs, logs[-2000:]
    assert time.monotonic() - stop_started < 10
    print(f"install (8 s) + boot to Web API: {boot_seconds:.1f} s")


def test_without_net_admin_falls_back_to_user_mode_forwarding_5000(
    client: docker.DockerClient, sim_image: SimImage, containers: list[Any]
) -> None:
    """src/network.sh v7.41: configureNAT fails without NET_ADMIN, a warning says it falls back
    to user-mode networking, and getUserPorts forwards 22 and 5000 (plus USER_PORTS) only."""
    container, port = run_sim(client, sim_image.ref, containers, {"USER_PORTS": "5001"}, nat=False)
    wait_for("the guest's Web API (user mode)", api_ready(port), BOOT_TIMEOUT, container)
    logs = container.logs().decode(errors="replace")
    assert "--cap-add NET_ADMIN" in logs
    assert "falling back to user-mode networking" in logs
    forwards = sorted(set(re.findall(r"hostfwd=(\w+)::(\d+)-" + GUEST_IP + r":(\d+)", logs)))
    assert forwards == [("tcp", "22", "22"), ("tcp", "5000", "5000"), ("tcp", "5001", "5001")]
    # QEMU's forward listens in the container, so there 127.0.0.1:5000 is DSM.
    assert curl_inside(container, "http://127.0.0.1:5000/") == (0, "200")
    assert "dockerbridge" not in exec_out(container, "ip", "link")


def test_boot_pat_names_the_disks_and_an_existing_install_is_kept(
    client: docker.DockerClient,
    twin: Twin,
    containers: list[Any],
    tmp_dirs: Callable[[str], Path],
) -> None:
    """A PAT at /boot.pat makes BASE DSM_VirtualDSM (v7.41 src/install.sh:26-28; v7.65
    src/install.sh:529-538); install is skipped when both images exist and are non-empty
    (v7.41 src/install.sh:43-45; v7.65 src/install.sh:561-565). Waits for QEMU only."""
    sim_image = twin.image
    storage, pat_dir = tmp_dirs("storage"), tmp_dirs("pat")
    pat = pat_dir / "DSM_VirtualDSM_72806.pat"
    pat.write_bytes(b"not a real PAT\n" * 64)
    volumes = {
        str(storage): {"bind": "/storage", "mode": "rw"},
        str(pat): {"bind": "/boot.pat", "mode": "ro"},
    }
    env = {"NETWORK": "N"}
    first, _ = run_sim(client, sim_image.ref, containers, env, volumes=volumes)
    wait_for("QEMU's start", lambda: b"Booting Virtual DSM" in first.logs(), 60, first)
    # killed, not stopped: a guest still booting cannot answer the shutdown request, so a stop
    # would only wait for docker's timeout (the stop path is the NAT and QMP tests')
    first.kill()
    first.wait(timeout=30)
    assert "Install: using the installation image /boot.pat" in first.logs().decode()
    assert (storage / "dsm.ver").read_text().strip() == "DSM_VirtualDSM"
    boot, system = storage / "DSM_VirtualDSM.boot.img", storage / "DSM_VirtualDSM.system.img"
    assert boot.stat().st_size > 0 and system.stat().st_size > 0
    assert not list(storage.glob(f"{BASE}.*"))
    stamp = (boot.stat().st_mtime_ns, system.stat().st_mtime_ns)

    second, _ = run_sim(client, sim_image.ref, containers, env, volumes=volumes)
    wait_for("QEMU's start", lambda: b"Booting Virtual DSM" in second.logs(), 60, second)
    second.kill()
    second.wait(timeout=30)
    assert "Install:" not in second.logs().decode()
    assert (boot.stat().st_mtime_ns, system.stat().st_mtime_ns) == stamp


def test_ram_size_above_available_memory_exits_17_on_741_is_lowered_on_765(
    client: docker.DockerClient, twin: Twin, containers: list[Any]
) -> None:
    """RAM_SIZE larger than the available memory. 7.41 refuses it: exit 17 (v7.41
    src/reset.sh:129-132, again src/config.sh:23-24). 7.65 lowers it to "max", the available
    memory less a reserve, with a warning, and boots (qemus/qemu v7.48 src/memory.sh:68-83,
    128-156, from v7.65 src/config.sh:104); this waits for QEMU only."""
    container, _ = run_sim(client, twin.image.ref, containers, {"RAM_SIZE": "4096G"})
    if twin.upstream == "7.41":
        assert container.wait(timeout=60)["StatusCode"] == 17
        logs = container.logs(stdout=False).decode(errors="replace")
        assert "RAM_SIZE=4096G is too high" in logs
        return
    booting = wait_for(
        "QEMU's start",
        lambda: next(
            (ln for ln in container.logs().decode().splitlines() if "Booting Virtual DSM" in ln),
            None,
        ),
        60,
        container,
    )
    warning = container.logs(stdout=False).decode(errors="replace")
    assert "RAM_SIZE of 4096G is too high" in warning, warning[-2000:]
    assert "it will automatically be adjusted to a lower amount" in warning
    match = re.search(r" -m (\d+)M ", booting)
    assert match, booting
    available = int(
        exec_out(container, "awk", "/^MemAvailable:/ { print $2 * 1024 }", "/proc/meminfo")
    )
    assert 0 < int(match.group(1)) * 1024**2 < available, (booting, available)


def test_qemu_failing_to_start_exits_with_the_releases_code_and_its_error(
    client: docker.DockerClient, twin: Twin, containers: list[Any]
) -> None:
    """QEMU's error goes to stderr and the container exits 15 on 7.41 (v7.41 src/entry.sh:29-30),
    QEMU's own code on 7.65 (:data:`QEMU_FAILS`); ARGUMENTS are last on QEMU's command line
    (v7.41 src/config.sh:12; v7.65 src/config.sh:95). The twin prints the command line on its
    boot line for both (7.65 prints it only with DEBUG, v7.65 src/finish.sh:10-13)."""
    container, _ = run_sim(
        client, twin.image.ref, containers, {"ARGUMENTS": "-device no-such-device-x"}
    )
    assert container.wait(timeout=60)["StatusCode"] == QEMU_FAILS[twin.upstream]
    stderr = container.logs(stdout=False).decode(errors="replace")
    assert "no-such-device-x" in stderr
    command = next(
        line for line in container.logs().decode().splitlines() if "Booting Virtual DSM" in line
    )
    assert command.rstrip().endswith("-device no-such-device-x")


def test_kvm_without_device_exits_88(
    client: docker.DockerClient, twin: Twin, containers: list[Any]
) -> None:
    """KVM=Y without /dev/kvm exits 88 (v7.41 src/proc.sh:70; 7.65: qemus/qemu v7.48
    src/init.sh:188-224)."""
    container = client.containers.run(
        twin.image.ref, detach=True, environment={"KVM": "Y"}, labels=LABELS
    )
    containers.append(container)
    status = container.wait(timeout=60)
    assert status["StatusCode"] == 88
    assert "/dev/kvm" in container.logs().decode(errors="replace")


def test_accelerator_probe_says_tcg_with_a_reason_or_kvm_boots(
    client: docker.DockerClient, sim_image: SimImage, containers: list[Any]
) -> None:
    missing = probe_accelerator(client, sim_image.ref, kvm_device="/nonexistent/kvm")
    assert missing.accelerator == "tcg"
    assert "/nonexistent/kvm" in missing.reason and missing.seconds < 1

    run_id = f"test-probe-{os.getpid()}"
    result = probe_accelerator(
        client, sim_image.ref, timeout=25, labels=L.owner_labels("probe", run_id)
    )
    assert result.reason
    # this probe's container only: builds running beside this test probe too
    leftovers = client.containers.list(all=True, filters={"label": f"vdsm-ci.run-id={run_id}"})
    assert leftovers == []
    if result.accelerator == "tcg":
        assert "TCG" in result.reason
    else:
        # The probe claims KVM works: then the simulator must boot under it.
        container, port = run_sim(
            client, sim_image.ref, containers, {"KVM": "Y"}, devices=["/dev/kvm:/dev/kvm:rwm"]
        )
        wait_for("the guest's Web API under KVM", api_ready(port), 60, container)


def _patched_disk_script(
    client: docker.DockerClient, image: str, upstream: str = UPSTREAMS[0]
) -> tuple[str, bytes]:
    """(path, text) of the release's script with boot and system attached as qcow2, as the
    project's build base does: the two createDevice lines of :data:`DISK_SCRIPT`."""
    path, markers = DISK_SCRIPT[upstream]
    script = client.containers.run(
        image, entrypoint=["cat", path], remove=True, network_mode="none"
    ).decode()
    lines = script.splitlines(keepends=True)
    patched = 0
    for i, line in enumerate(lines):
        if any(marker in line for marker in markers):
            lines[i] = line.replace('"raw"', '"qcow2"')
            patched += lines[i] != line
    assert patched == 2, script
    return path, "".join(lines).encode()


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _snapshots(container: Any, disk: str) -> list[dict[str, Any]]:
    info = json.loads(exec_out(container, "qemu-img", "info", "-U", "--output=json", disk))
    snapshots: list[dict[str, Any]] = info.get("snapshots", [])
    return snapshots


async def test_qmp_savevm_commit_and_loadvm_restore_guest_state(
    client: docker.DockerClient,
    twin: Twin,
    containers: list[Any],
    tmp_dirs: Callable[[str], Path],
) -> None:
    """QMP through ARGUMENTS, last on QEMU's command line (v7.41 src/config.sh:12; v7.65
    src/config.sh:95); the boot and system disks attached raw (:data:`DISK_SCRIPT`), so
    snapshots need the build base's qcow2 patch of that script; dsm.url once a cold boot
    reports (v7.41 src/print.sh:12; v7.65 src/print.sh:113-118, 214), none after a ``-loadvm``
    restore (removed at every start: v7.41 src/reset.sh:138; v7.65 src/install.sh:491); a
    stop exits 143 on both; a failed restore exits :data:`QEMU_FAILS`."""
    sim_image, upstream = twin.image, twin.upstream
    storage, qmp_dir = tmp_dirs("storage"), tmp_dirs("qmp")
    qmp_socket = qmp_dir / "qmp.sock"
    qmp_env = {"DISK_FMT": "qcow2", "ARGUMENTS": "-qmp unix:/qmp/qmp.sock,server=on,wait=off"}
    qmp_volume = {str(qmp_dir): {"bind": "/qmp", "mode": "rw"}}

    # 1. As on upstream: raw boot and system disks, so savevm must fail.
    first, port = run_sim(
        client,
        sim_image.ref,
        containers,
        qmp_env,
        volumes={str(storage): {"bind": "/storage", "mode": "rw"}, **qmp_volume},
    )
    wait_for("the guest's Web API", api_ready(port), BOOT_TIMEOUT, first)
    status = await _qmp(qmp_socket, "query-status")
    assert status["status"] == "running"
    refused = await _qmp(qmp_socket, "human-monitor-command", **{"command-line": "savevm final"})
    assert "does not support snapshots" in refused
    assert _snapshots(first, f"/storage/{BASE}.boot.img") == []
    first.stop(timeout=20)

    # 2. Convert boot and system disks to qcow2 and attach them as qcow2.
    client.containers.run(
        sim_image.ref,
        entrypoint=["sh", "-c"],
        command=[
            "set -e; for f in /storage/*.boot.img /storage/*.system.img; do "
            'qemu-img convert -O qcow2 "$f" "$f.qcow2"; mv "$f.qcow2" "$f"; done'
        ],
        volumes={str(storage): {"bind": "/storage", "mode": "rw"}},
        remove=True,
        network_mode="none",
    )
    # /storage is a VOLUME, which `docker commit` does not capture: keep the disks in /data,
    # a plain directory of the container, instead.
    files = {f"data/{p.name}": (p.read_bytes(), 0o644) for p in storage.iterdir()}
    script, text = _patched_disk_script(client, sim_image.ref, upstream)
    files[script.lstrip("/")] = (text, 0o755)
    port = free_port()
    second = client.containers.create(
        sim_image.ref,
        environment={"KVM": "N", "STORAGE": "/data", **qmp_env},
        ports={"5000/tcp": ("127.0.0.1", port)},
        volumes=qmp_volume,
        labels=LABELS,
        **NAT,
    )
    containers.append(second)
    assert second.put_archive("/", _tar(files))
    second.start()
    wait_for("the guest's Web API (qcow2 disks)", api_ready(port), BOOT_TIMEOUT, second)
    # A cold boot: the guest reports its address and print.sh writes dsm.url, the release's
    # guest address (nat_guest_address: 7.65 derives it, no VM_NET_IP here).
    guest = nat_guest_address(second, upstream)
    assert f"the guest's address: {guest}" in second.logs().decode(errors="replace")
    wait_for(
        "dsm.url after a cold boot",
        lambda: (
            second.exec_run(["cat", "/run/shm/dsm.url"]).output.decode().strip() == f"{guest}:5000"
        ),
        30,
        second,
    )

    # 3. State that lives only in the guest's memory: the admin account.
    created = requests.post(f"http://127.0.0.1:{port}/sim/ui/admin", json=ADMIN, timeout=10)
    assert created.json().get("ok") is True, created.text
    assert login(port)["success"] is True
    saved = await _qmp(qmp_socket, "human-monitor-command", **{"command-line": "savevm final"})
    assert saved.strip() == "", saved
    assert "final" in {s["name"] for s in _snapshots(second, f"/data/{BASE}.boot.img")}
    # The VM state goes to the first drive on QEMU's command line: the boot disk on 7.41 (v7.41
    # src/disk.sh:548-549 attach it before the data disk, :608), the data disk on 7.65 (its
    # src/disk.sh runs before src/prepare.sh: v7.65 src/entry.sh:28,30).
    state_disk = {"7.41": f"/data/{BASE}.boot.img", "7.65": "/data/data.qcow2"}[upstream]
    names = {s["name"]: s for s in _snapshots(second, state_disk)}
    assert "final" in names and int(names["final"]["vm-state-size"]) > 0, (state_disk, names)
    second.stop(timeout=20)
    second.reload()
    # A graceful stop: the guest confirms the shutdown request (v7.41 src/power.sh:138; v7.65
    # src/power.sh:68-70), and the container exits 128 + SIGTERM: v7.41 src/power.sh:102-104
    # exits with the status of the `wait` the signal interrupted (src/entry.sh:34); v7.65
    # src/power.sh:151-200 with signalCode SIGTERM (qemus/qemu v7.48 src/utils.sh:47).
    stopped = second.logs().decode(errors="replace")
    assert "Virtual DSM is now ready to shutdown" in stopped, stopped[-2000:]
    assert second.attrs["State"]["ExitCode"] == 143

    committed = second.commit(repository=SIM_REPOSITORY, tag=f"test-commit-{port}")
    try:
        # 4. A new container of the committed image restores the guest, admin account included.
        restored_at = time.monotonic()
        third, port3 = run_sim(
            client, committed.id, containers, {"ARGUMENTS": "-loadvm final"}, volumes=qmp_volume
        )
        wait_for("the restored guest's Web API", api_ready(port3), 60, third)
        restore_seconds = time.monotonic() - restored_at
        assert login(port3)["success"] is True
        assert "guest app started" not in third.logs().decode(errors="replace")
        # A restored guest does not boot, so it reports nothing and dsm.url stays absent. (The
        # twin's host helper, host.py on 127.0.0.1:2210, stands in for host.bin on both twins;
        # 7.65 asks it through a unix socket, v7.65 src/serial.sh:21, src/print.sh:24,43.)
        assert host_helper_answer(third)["status"] == "error"
        code, _ = third.exec_run(["test", "-e", "/run/shm/dsm.url"])
        assert code == 1, "dsm.url exists after a -loadvm restore"
        # NAT: inside the container DSM is the guest's address (in the restoring container's
        # network: 7.65 derives it again). 7.41: nothing answers on the container's
        # 127.0.0.1:5000 (only eth0 is DNATed, v7.41 src/network.sh); the 7.65 twin keeps those
        # rules, not v7.48's QEMU_DNAT chain, so that is asserted for 7.41 only.
        restored_guest = nat_guest_address(third, upstream)
        assert curl_inside(third, f"http://{restored_guest}:5000/") == (0, "200")
        if upstream == "7.41":
            assert curl_inside(third, "http://127.0.0.1:5000/")[0] == 7
        third.remove(force=True, v=True)

        # 5. QEMU failing to start (unknown snapshot) ends the container with QEMU_FAILS.
        broken = client.containers.run(
            committed.id,
            detach=True,
            environment={"KVM": "N", "ARGUMENTS": "-loadvm nosuchsnapshot"},
            labels=LABELS,
            **NAT,
        )
        containers.append(broken)
        assert broken.wait(timeout=60)["StatusCode"] == QEMU_FAILS[upstream]
        assert "nosuchsnapshot" in broken.logs(stdout=False).decode(errors="replace")
        print(f"restore to Web API: {restore_seconds:.1f} s")
    finally:
        for container in containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        client.images.remove(committed.id, force=True)


# -- the data plane -------------------------------------------------------------------------

DATA_PORTS = (5000, 445, 2049, 3260)
DATA_SPEC = {
    "nfs": True,
    "nfs_v4": True,
    "smb": True,
    "iscsi": {"target": {"name": "dp"}, "lun": {"name": "dp-lun", "size_gb": 1}},
    "shares": [{"name": "ci"}],
}


def _published(container: Any) -> dict[int, int]:
    container.reload()
    ports = container.attrs["NetworkSettings"]["Ports"]
    return {int(k.split("/")[0]): int(v[0]["HostPort"]) for k, v in ports.items() if v}


def _endpoints(container: Any) -> dataplane.Endpoints:
    p = _published(container)
    return dataplane.Endpoints("127.0.0.1", smb=p[445], nfs=p[2049], iscsi=p[3260])


def _client(argv: list[str], password: str | None = None) -> str:
    env = {**os.environ, **({"PASSWD": password} if password else {})}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
    return result.stdout


async def test_smb_nfs_iscsi_served_through_published_ports_and_kept_by_savevm(
    client: docker.DockerClient,
    sim_image: SimImage,
    containers: list[Any],
    tmp_dirs: Callable[[str], Path],
) -> None:
    """Through the container's NAT (src/network.sh v7.41 DNATs every port of eth0 to the
    guest): smbclient, nfs-ls and iscsi-readcapacity16 (userland, no kernel module here) use the
    share and the LUN the Web API created; SMB switched off refuses and the check names it; a
    file written before ``savevm`` is served over SMB and NFS by a ``-loadvm`` restore."""
    for tool in ("smbclient", "nfs-ls", "nfs-cp", "iscsi-readcapacity16"):
        assert shutil.which(tool), (
            f"{tool} missing: apt-get install smbclient libnfs-utils libiscsi-bin"
        )
    qmp_dir = tmp_dirs("qmp")
    qmp_env = {"DISK_FMT": "qcow2", "ARGUMENTS": "-qmp unix:/qmp/qmp.sock,server=on,wait=off"}
    qmp_volume = {str(qmp_dir): {"bind": "/qmp", "mode": "rw"}}
    disks = tmp_dirs("disks")
    for name in ("boot", "system"):  # installed already, and qcow2 as the build base attaches
        _client(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(disks / f"{BASE}.{name}.img"), "64M"]
        )
    files = {f"data/{p.name}": (p.read_bytes(), 0o644) for p in disks.iterdir()}
    script, text = _patched_disk_script(client, sim_image.ref)
    files[script.lstrip("/")] = (text, 0o755)
    first = client.containers.create(
        sim_image.ref,
        environment={"KVM": "N", "STORAGE": "/data", **qmp_env},
        ports={f"{p}/tcp": ("127.0.0.1", None) for p in DATA_PORTS},
        volumes=qmp_volume,
        labels=LABELS,
        **NAT,
    )
    containers.append(first)
    assert first.put_archive("/", _tar(files))
    first.start()
    port = _published(first)[5000]
    wait_for("the guest's Web API", api_ready(port), BOOT_TIMEOUT, first)
    created = requests.post(f"http://127.0.0.1:{port}/sim/ui/admin", json=ADMIN, timeout=10)
    assert created.json().get("ok") is True, created.text
    user, password = ADMIN["nas_account"], ADMIN["password"]
    spec = services.ServicesSpec.model_validate(DATA_SPEC)
    url = f"http://127.0.0.1:{port}"
    with DsmClient(url) as dsm, dsm.login(user, password) as session:
        services.apply(session, spec)
    # /volume1 is the data disk (behind its own virtio-scsi controller, as 7.41 attaches it),
    # not guest RAM: what the services write reaches the disk a checkpoint commits
    console = first.logs().decode(errors="replace")
    assert "mounted at /volume1" in console, console[-3000:]
    assert "/volume1 is in guest RAM" not in console, console[-3000:]

    ports = _endpoints(first)
    report = await asyncio.to_thread(
        dataplane.check, ports, spec, user=user, password=password, server_name="simtest"
    )
    assert any(line.startswith("smb: put and got back ci/") for line in report.lines)
    assert any("same bytes" in line and line.startswith("nfs:") for line in report.lines)
    assert report.lun_bytes == 1024**3

    # What a user types: smbclient copies a file in and lists it; nfs-ls lists it; libiscsi
    # reads the LUN's size.
    keep = tmp_dirs("keep") / "before-savevm.txt"
    keep.write_bytes(b"written over SMB before savevm\n")
    listing = _client(
        ["smbclient", "//127.0.0.1/ci", "-p", str(ports.smb), "-U", user,
         "-c", f"put {keep} before-savevm.txt; ls"],
        password,
    )  # fmt: skip
    assert "before-savevm.txt" in listing
    nfs_url = f"nfs://127.0.0.1/volume1/ci?version=4&nfsport={ports.nfs}"
    assert "before-savevm.txt" in _client(["nfs-ls", nfs_url])
    iqn = services.dsm_iqn("simtest", "dp")
    capacity = _client(["iscsi-readcapacity16", f"iscsi://127.0.0.1:{ports.iscsi}/{iqn}/1"])
    assert f"Total size:{1024**3}" in capacity
    # DSM's INQUIRY identity (vdsmlib/dsm/iscsi.py), not LIO's LIO-ORG/FILEIO
    inquiry = _client(["iscsi-inq", f"iscsi://127.0.0.1:{ports.iscsi}/{iqn}/1"])
    assert f"Vendor:{iscsi_facts.INQUIRY_VENDOR}" in inquiry, inquiry
    assert f"Product:{iscsi_facts.INQUIRY_PRODUCT}" in inquiry, inquiry

    # File Station's multipart upload lands where SMB and NFS serve it, and back
    uploaded = b"uploaded through File Station\n"
    with DsmClient(url) as dsm, dsm.login(user, password) as session:
        answer = requests.post(
            f"{url}/webapi/entry.cgi",
            params={
                "api": "SYNO.FileStation.Upload",
                "version": "2",
                "method": "upload",
                "_sid": session.sid,
            },
            files=[
                ("path", (None, "/ci")),
                ("overwrite", (None, "true")),
                ("file", ("via-filestation.txt", uploaded)),
            ],
            timeout=60,
        ).json()
        assert answer["success"] is True, answer
        fetched = tmp_dirs("fetched")
        _client(
            ["smbclient", "//127.0.0.1/ci", "-p", str(ports.smb), "-U", user,
             "-c", f"get via-filestation.txt {fetched / 'smb.txt'}"],
            password,
        )  # fmt: skip
        assert (fetched / "smb.txt").read_bytes() == uploaded
        nfs_file = f"nfs://127.0.0.1/volume1/ci/via-filestation.txt?version=4&nfsport={ports.nfs}"
        _client(["nfs-cp", nfs_file, str(fetched / "nfs.txt")])
        assert (fetched / "nfs.txt").read_bytes() == uploaded
        listed = requests.get(
            f"{url}/webapi/entry.cgi",
            params={
                "api": "SYNO.FileStation.List",
                "version": "2",
                "method": "list",
                "folder_path": '"/ci"',
                "_sid": session.sid,
            },
            timeout=10,
        ).json()
        assert "before-savevm.txt" in [f["name"] for f in listed["data"]["files"]], listed

    # A LUN cloned from a snapshot holds the bytes of the snapshot's moment, as the CSI driver's
    # snapshot restore expects (synology-csi pkg/dsm/webapi/iscsi.go: take_snapshot,
    # clone_snapshot, map_target): written before the snapshot, overwritten after.
    lun_api = "SYNO.Core.ISCSI.LUN"
    with IscsiSession("127.0.0.1", ports.iscsi, iqn) as initiator:
        initiator.write_block(1, 0, b"before the snapshot".ljust(512, b"."))
    with DsmClient(url) as dsm, dsm.login(user, password) as session:
        (lun,) = [x for x in session.lun_list() if x["name"] == "dp-lun"]
        (target,) = [t for t in session.target_list() if t["name"] == "dp"]
        snap = session.request(
            lun_api, "take_snapshot", 1, src_lun_uuid=lun["uuid"], snapshot_name="s1",
            description="", taken_by="test", is_locked=False, is_app_consistent=False,
        )["snapshot_uuid"]  # fmt: skip
        with IscsiSession("127.0.0.1", ports.iscsi, iqn) as initiator:
            initiator.write_block(1, 0, b"after the snapshot".ljust(512, b"."))
        clone = session.request(
            lun_api, "clone_snapshot", 1, src_lun_uuid=lun["uuid"], snapshot_uuid=snap,
            cloned_lun_name="dp-restored",
        )["cloned_lun_uuid"]  # fmt: skip
        session.request(lun_api, "map_target", 1, uuid=clone, target_ids=[str(target["target_id"])])
    with IscsiSession("127.0.0.1", ports.iscsi, iqn) as initiator:
        assert initiator.report_luns() == [1, 2]
        assert initiator.read_block(2, 0, 512).startswith(b"before the snapshot")
        assert initiator.read_block(1, 0, 512).startswith(b"after the snapshot")

    # SMB off through the Web API: the port refuses, and the check says which and how.
    with DsmClient(url) as dsm, dsm.login(user, password) as session:
        services.apply(session, spec.model_copy(update={"smb": False}))
        with pytest.raises(dataplane.DataPlaneError) as refused:
            await asyncio.to_thread(
                dataplane.check, ports, spec, user=user, password=password, server_name="simtest"
            )
        assert (refused.value.service, refused.value.how) == ("smb", "refused")
        # No NFS rule, no export, as on DSM: the check names NFS and the missing export.
        session.nfs_rules_save("ci", [])
        with pytest.raises(dataplane.DataPlaneError) as unexported:
            await asyncio.to_thread(
                dataplane.check_nfs, ports, "/volume1/ci", "before-savevm.txt", None
            )
        assert (unexported.value.service, unexported.value.how) == ("nfs", "export missing")
        services.apply(session, spec)
        # SMB as the share permissions say (SYNO.Core.Share.Permission), reckoned as DSM does
        # over the user and his groups (No access > Read/Write > Read only): with the admin and
        # the administrators group read-only the copy is refused, with the admin's No access
        # the share is; the admin's Read/Write serves it again.
        session.request(
            "SYNO.Core.Share.Permission", "set", 1, name="ci", user_group_type="local_group",
            permissions=[{"name": "administrators", "is_readonly": True}],
        )  # fmt: skip
        for perm, allowed in (("is_readonly", False), ("is_deny", False), ("is_writable", True)):
            session.request(
                "SYNO.Core.Share.Permission", "set", 1, name="ci",
                user_group_type="local_user", permissions=[{"name": user, perm: True}],
            )  # fmt: skip
            try:
                await asyncio.to_thread(
                    dataplane.check_smb, ports, "ci", user, password, f"{perm}.txt", b"x\n"
                )
                assert allowed, f"{perm}: the copy went through"
            except dataplane.DataPlaneError as err:
                assert not allowed, err
                assert (err.service, err.how) == ("smb", "auth"), err

    saved = await _qmp(
        qmp_dir / "qmp.sock", "human-monitor-command", **{"command-line": "savevm final"}
    )
    assert saved.strip() == "", saved
    first.stop(timeout=20)
    committed = first.commit(repository=SIM_REPOSITORY, tag=f"test-dataplane-{port}")
    try:
        for _ in range(2):  # every restore serves what the checkpoint holds
            restored = client.containers.run(
                committed.id,
                detach=True,
                environment={"KVM": "N", "ARGUMENTS": "-loadvm final"},
                ports={f"{p}/tcp": ("127.0.0.1", None) for p in DATA_PORTS},
                labels=LABELS,
                **NAT,
            )
            containers.append(restored)
            wait_for("the restored Web API", api_ready(_published(restored)[5000]), 60, restored)
            again = _endpoints(restored)
            lines = dataplane.check_smb(
                again, "ci", user, password, "after-restore.txt", b"after restore\n"
            )
            lines += dataplane.read_smb(
                again, "ci", user, password, "before-savevm.txt", keep.read_bytes()
            )
            lines += await asyncio.to_thread(
                dataplane.check_nfs, again, "/volume1/ci", "before-savevm.txt", keep.read_bytes()
            )
            lines += dataplane.check_iscsi(again, iqn, 1024**3)
            print("\n".join(lines))
            restored.remove(force=True, v=True)
    finally:
        client.images.remove(committed.id, force=True)
