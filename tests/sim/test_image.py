"""The DSM simulator image honours the vdsm/virtual-dsm container contract.

Real dockerd, real QEMU (TCG) in the container, the real guest application. Every container,
image and directory a test creates is removed at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
from qemu.qmp import QMPClient

from vdsmlib.qemu.accel import probe_accelerator
from vdsmlib.sim.image.build import SIM_REPOSITORY, SimImage, ensure_sim_image

pytestmark = pytest.mark.docker

BASE = "DSM_VirtualDSM_SIM"
LABELS = {"vdsm-ci.owner": "vdsm-ci", "vdsm-ci.kind": "test"}
INFO_QUERY = "/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query&query=ALL"
ADMIN = {
    "device_name": "simtest",
    "nas_account": "simadmin",
    "password": "Sim-Test-Passw0rd",
    "password_confirm": "Sim-Test-Passw0rd",
}


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
            return False  # still the "please wait" page

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
    **kwargs: Any,
) -> tuple[Any, int]:
    port = free_port()
    container = client.containers.run(
        image,
        detach=True,
        environment={"KVM": "N", **env},
        ports={"5000/tcp": ("127.0.0.1", port)},
        labels=LABELS,
        **kwargs,
    )
    containers.append(container)
    return container, port


def exec_out(container: Any, *cmd: str) -> str:
    code, output = container.exec_run(list(cmd))
    text = output.decode(errors="replace")
    assert code == 0, f"{cmd} failed ({code}): {text}"
    return str(text)


def test_boot_shows_wait_page_then_guest_api_and_installs_storage(
    client: docker.DockerClient,
    sim_image: SimImage,
    containers: list[Any],
    tmp_dirs: Callable[[str], Path],
) -> None:
    storage = tmp_dirs("storage")
    started = time.monotonic()
    container, port = run_sim(
        client,
        sim_image.ref,
        containers,
        {"SIM_HOSTNAME": "sim-test-host", "SIM_INSTALL_DELAY": "0"},
        volumes={str(storage): {"bind": "/storage", "mode": "rw"}},
    )

    first = wait_for("any HTTP answer on port 5000", lambda: get(port, "/"), 30, container)
    assert first.status_code == 200
    assert "<title>Virtual DSM</title>" in first.text
    assert "Please wait while Virtual DSM is booting" in first.text
    # The Web API gets the same page before the guest is up, as with virtual-dsm.
    early = get(port, INFO_QUERY)
    assert early is not None and "Please wait" in early.text

    wait_for("the guest's Web API", api_ready(port), 60, container)
    boot_seconds = time.monotonic() - started
    info = requests.get(f"http://127.0.0.1:{port}{INFO_QUERY}", timeout=5).json()
    assert "SYNO.API.Auth" in info["data"]
    # The SIM_* knob reached the guest through the kernel command line.
    state = requests.get(f"http://127.0.0.1:{port}/sim/state", timeout=5).text
    assert "sim-test-host" in state

    assert (storage / "dsm.ver").read_text().strip() == BASE
    assert (storage / f"{BASE}.boot.img").stat().st_size > 0
    assert (storage / f"{BASE}.system.img").stat().st_size > 0
    assert (storage / "data.img").stat().st_size == 2 * 1024**3
    assert (storage / "dsm.mac").read_text().startswith("02:11:32:")
    # Where DSM answers from inside the container: QEMU's forward of guest port 5000.
    assert exec_out(container, "cat", "/run/shm/dsm.url").strip() == "127.0.0.1:15000"
    assert "guest app started" in container.logs().decode(errors="replace")

    stop_started = time.monotonic()
    container.stop(timeout=20)
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0, container.logs().decode()[-2000:]
    assert time.monotonic() - stop_started < 10
    print(f"boot to Web API: {boot_seconds:.1f} s")


def test_kvm_without_device_exits_88(
    client: docker.DockerClient, sim_image: SimImage, containers: list[Any]
) -> None:
    container = client.containers.run(
        sim_image.ref, detach=True, environment={"KVM": "Y"}, labels=LABELS
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
    result = probe_accelerator(client, sim_image.ref, timeout=25, run_id=run_id)
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


def _patched_prepare(client: docker.DockerClient, image: str) -> bytes:
    """prepare.sh with boot and system attached as qcow2, as the project's build base does."""
    script = client.containers.run(
        image, entrypoint=["cat", "/run/prepare.sh"], remove=True, network_mode="none"
    ).decode()
    lines = script.splitlines(keepends=True)
    patched = 0
    for i, line in enumerate(lines):
        if 'createDevice "$boot"' in line or 'createDevice "$system"' in line:
            lines[i] = line.replace('"raw"', '"qcow2"')
            patched += lines[i] != line
    assert patched == 2, script
    return "".join(lines).encode()


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def _qmp(socket_path: Path, command: str, **arguments: Any) -> Any:
    qmp = QMPClient("vdsm-test")
    await qmp.connect(str(socket_path))
    try:
        return await qmp.execute(command, arguments or None)
    finally:
        await qmp.disconnect()


def _snapshots(container: Any, disk: str) -> list[dict[str, Any]]:
    info = json.loads(exec_out(container, "qemu-img", "info", "-U", "--output=json", disk))
    snapshots: list[dict[str, Any]] = info.get("snapshots", [])
    return snapshots


async def test_qmp_savevm_commit_and_loadvm_restore_guest_state(
    client: docker.DockerClient,
    sim_image: SimImage,
    containers: list[Any],
    tmp_dirs: Callable[[str], Path],
) -> None:
    storage, qmp_dir = tmp_dirs("storage"), tmp_dirs("qmp")
    qmp_socket = qmp_dir / "qmp.sock"
    qmp_env = {"DISK_FMT": "qcow2", "QMP": "unix:/qmp/qmp.sock,server=on,wait=off"}
    qmp_volume = {str(qmp_dir): {"bind": "/qmp", "mode": "rw"}}

    # 1. As on upstream: raw boot and system disks, so savevm must fail.
    first, port = run_sim(
        client,
        sim_image.ref,
        containers,
        qmp_env,
        volumes={str(storage): {"bind": "/storage", "mode": "rw"}, **qmp_volume},
    )
    wait_for("the guest's Web API", api_ready(port), 60, first)
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
    files["run/prepare.sh"] = (_patched_prepare(client, sim_image.ref), 0o755)
    port = free_port()
    second = client.containers.create(
        sim_image.ref,
        environment={"KVM": "N", "STORAGE": "/data", **qmp_env},
        ports={"5000/tcp": ("127.0.0.1", port)},
        volumes=qmp_volume,
        labels=LABELS,
    )
    containers.append(second)
    assert second.put_archive("/", _tar(files))
    second.start()
    wait_for("the guest's Web API (qcow2 disks)", api_ready(port), 60, second)

    # 3. State that lives only in the guest's memory: the admin account.
    created = requests.post(f"http://127.0.0.1:{port}/sim/ui/admin", json=ADMIN, timeout=10)
    assert created.json().get("ok") is True, created.text
    assert login(port)["success"] is True
    saved = await _qmp(qmp_socket, "human-monitor-command", **{"command-line": "savevm final"})
    assert saved.strip() == "", saved
    names = {s["name"]: s for s in _snapshots(second, f"/data/{BASE}.boot.img")}
    assert "final" in names and int(names["final"]["vm-state-size"]) > 0
    second.stop(timeout=20)
    second.reload()
    assert second.attrs["State"]["ExitCode"] == 0

    committed = second.commit(repository=SIM_REPOSITORY, tag=f"test-commit-{port}")
    try:
        # 4. A new container of the committed image restores the guest, admin account included.
        restored_at = time.monotonic()
        third, port3 = run_sim(
            client, committed.id, containers, {"ARGUMENTS": "-loadvm final"}, volumes=qmp_volume
        )
        wait_for("the restored guest's Web API", api_ready(port3), 30, third)
        restore_seconds = time.monotonic() - restored_at
        assert login(port3)["success"] is True
        assert "guest app started" not in third.logs().decode(errors="replace")
        third.remove(force=True, v=True)

        # 5. A QEMU error (unknown snapshot) ends the container with a non-zero code.
        broken = client.containers.run(
            committed.id,
            detach=True,
            environment={"KVM": "N", "ARGUMENTS": "-loadvm nosuchsnapshot"},
            labels=LABELS,
        )
        containers.append(broken)
        assert broken.wait(timeout=60)["StatusCode"] != 0
        assert "nosuchsnapshot" in broken.logs().decode(errors="replace")
        print(f"restore to Web API: {restore_seconds:.1f} s")
    finally:
        for container in containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        client.images.remove(committed.id, force=True)
