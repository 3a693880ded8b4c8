"""The simulator's twins of vdsm/virtual-dsm 7.41 and of the newest release (7.65).

Each twin is made into the project's build base (``vdsmlib.pipeline.base.build_base``, the
patch of the release's disk script), snapshotted in one Docker network and restored in another
with a different subnet. Upstream behaviour each test pins is cited by file and tag
(``docs/virtual-dsm-releases.md`` collects them).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
from vdsm_sim.image.build import UPSTREAMS, ensure_sim_image

from tests.poll import poll
from tests.sim.test_image import ADMIN, INFO_QUERY, LABELS, NAT, _qmp, free_port, login
from vdsmlib.docker import labels as L
from vdsmlib.pipeline.base import build_base
from vdsmlib.pipeline.pin import patch_file_for, release_of
from vdsmlib.readiness import NotReady

pytestmark = pytest.mark.docker

GUEST_ADDRESS = "20.20.20.21"  # base.guest_address in params; pinned through VM_NET_IP


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    yield engine
    engine.close()


@pytest.fixture(scope="module", params=UPSTREAMS)
def twin_base(request: pytest.FixtureRequest, client: docker.DockerClient) -> Iterator[str]:
    """The build base of one twin: its release's disk script patched to qcow2, no VOLUME."""
    upstream = str(request.param)
    sim = ensure_sim_image(client, upstream=upstream)
    release = release_of(f"vdsm/virtual-dsm:{upstream}")
    assert release is not None
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    tag = f"vdsm-ci-test/twin-base:{upstream}-{run_id}"
    build_base(client, sim.ref, patch_file_for(release), tag, labels=L.owner_labels("base", run_id))
    try:
        yield tag
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(tag, force=True)


@pytest.fixture
def networks(client: docker.DockerClient) -> Iterator[list[Any]]:
    """Two Docker networks with different subnets (and different third octets)."""
    made: list[Any] = []
    for third in (41, 65):
        pool = docker.types.IPAMPool(subnet=f"10.219.{third}.0/24")
        made.append(
            client.networks.create(
                f"vdsm-ci-test-net-{uuid.uuid4().hex[:8]}",
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                labels=LABELS,
            )
        )
    yield made
    for network in made:
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()


def _api(port: int) -> None:
    try:
        answer = requests.get(f"http://127.0.0.1:{port}{INFO_QUERY}", timeout=5)
    except requests.RequestException as err:
        raise NotReady(str(err)) from err
    if answer.status_code != 200 or not answer.json().get("success"):
        raise NotReady(f"HTTP {answer.status_code}")


def _start(
    client: docker.DockerClient, image: str, network: Any, env: dict[str, str], **kwargs: Any
) -> tuple[Any, int]:
    port = free_port()
    container = client.containers.create(
        image,
        # as the build runs its VMs (vdsmlib.checkpoints.vm.vm_env under TCG)
        environment={"KVM": "N", "CPU_MODEL": "qemu64", "DISK_FMT": "qcow2", **env},
        ports={"5000/tcp": ("127.0.0.1", port)},
        labels=LABELS,
        network=network.name,
        **NAT,
        **kwargs,
    )
    container.start()
    return container, port


def _alive(container: Any) -> str | None:
    container.reload()
    if container.status != "exited":
        return None
    return "it exited:\n" + container.logs().decode(errors="replace")[-2000:]


def test_snapshot_restores_in_a_network_with_another_subnet(
    client: docker.DockerClient, twin_base: str, networks: list[Any], tmp_path: Path
) -> None:
    """A snapshot taken in one network loads in another: 7.41's guest is always 20.20.20.21
    (v7.41 src/network.sh:17); the newest derives it from the container's address (qemus/qemu
    v7.48 src/network.sh:368-400) unless VM_NET_IP pins it, as `vdsm pin` writes it."""
    qmp_dir = tmp_path / "qmp"
    qmp_dir.mkdir()
    env = {
        "VM_NET_IP": GUEST_ADDRESS,
        "ARGUMENTS": "-qmp unix:/qmp/qmp.sock,server=on,wait=off",
    }
    containers: list[Any] = []
    committed = None
    try:
        first, port = _start(
            client, twin_base, networks[0], env, volumes={str(qmp_dir): {"bind": "/qmp"}}
        )
        containers.append(first)
        poll(lambda: _api(port), what="the guest", timeout=180, alive=lambda: _alive(first))
        created = requests.post(f"http://127.0.0.1:{port}/sim/ui/admin", json=ADMIN, timeout=60)
        assert created.json().get("ok") is True, created.text
        saved = asyncio.run(
            _qmp(qmp_dir / "qmp.sock", "human-monitor-command", **{"command-line": "savevm net"})
        )
        assert saved.strip() == "", saved
        first.stop(timeout=30)
        committed = first.commit(repository="vdsm-ci-test/twin-net", tag=uuid.uuid4().hex[:8])

        second, port2 = _start(
            client,
            committed.id,
            networks[1],
            {"VM_NET_IP": GUEST_ADDRESS, "ARGUMENTS": "-loadvm net"},
        )
        containers.append(second)
        poll(
            lambda: _api(port2), what="the restored guest", timeout=90, alive=lambda: _alive(second)
        )
        assert login(port2)["success"] is True  # the account made before the snapshot
        logs = second.logs().decode(errors="replace")
        assert "guest app started" not in logs  # restored, not booted
        assert f"the guest's address: {GUEST_ADDRESS}" in logs
        addresses = [c.attrs["NetworkSettings"]["Networks"] for c in (first, second)]
        subnets = {next(iter(a.values()))["IPAddress"].rsplit(".", 1)[0] for a in addresses}
        assert len(subnets) == 2, addresses
    finally:
        for container in containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        if committed is not None:
            client.images.remove(committed.id, force=True)


def test_newest_twin_derives_the_guest_address_and_exits_with_qemus_code(
    client: docker.DockerClient, networks: list[Any]
) -> None:
    """7.65's twin: without VM_NET_IP the guest is 172.30.<third octet of the container's
    address>.2 (qemus/qemu v7.48 src/network.sh:368-400); the boot and system disks are in
    /run/prepare.sh (v7.65 src/prepare.sh:15-16) and disk.sh has no such lines; QMP is honoured
    (v7.65 src/config.sh:5,37); QEMU in the foreground, so a failed -loadvm ends the
    container with QEMU's code, 1, not 7.41's 15 (v7.65 src/entry.sh:50-63)."""
    image = ensure_sim_image(client, upstream=UPSTREAMS[-1]).ref
    disk = client.containers.run(
        image,
        entrypoint=["cat", "/run/disk.sh", "/run/prepare.sh"],
        remove=True,
        network_mode="none",
    ).decode()
    assert 'createDevice "$BOOT"' not in disk and 'createDevice "$boot"' in disk
    containers: list[Any] = []
    try:
        booted, _ = _start(
            client, image, networks[1], {"QMP": "unix:/run/shm/env-qmp.sock,server=on,wait=off"}
        )
        containers.append(booted)

        def qmp_socket() -> None:  # QEMU is up once it listens on the socket QMP names
            if booted.exec_run(["test", "-S", "/run/shm/env-qmp.sock"]).exit_code != 0:
                raise NotReady("no QMP socket yet")

        poll(
            qmp_socket, what="QMP from the QMP variable", timeout=120, alive=lambda: _alive(booted)
        )
        assert "the guest's address: 172.30.65.2" in booted.logs().decode(errors="replace")

        failed, _ = _start(client, image, networks[0], {"ARGUMENTS": "-loadvm nosuchsnapshot"})
        containers.append(failed)
        assert failed.wait(timeout=120)["StatusCode"] == 1
        assert "nosuchsnapshot" in failed.logs().decode(errors="replace")
    finally:
        for container in containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
