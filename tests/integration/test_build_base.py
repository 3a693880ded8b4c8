"""The build base (``Dockerfile``) and its qcow2 conversion script, in real images.

The conversion script runs inside the base before the boot and system disks are attached. It
must read the image's own format: since QEMU 8, ``qemu-img info --output=json`` opens with a
``children`` list whose first entry says ``"format": "file"`` (the protocol layer), and
virtual-dsm 7.41 ships Debian trixie's QEMU 10. So it runs here in the build base made from the
simulator, in a Debian trixie image with QEMU 10 (with jq, and without it), and on the host.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from vdsm_sim.image.build import BASE_IMAGE, ensure_base_image

from vdsmlib.docker import labels as L
from vdsmlib.docker.images import get_image, remove_image
from vdsmlib.pipeline.base import ASSETS, build_base

pytestmark = [pytest.mark.docker, pytest.mark.qemu]

#: Debian trixie with qemu-utils and jq: the QEMU 10 of virtual-dsm 7.41, built on the
#: simulator's Debian base, as an ordinary user in the `docker` group can (kept between runs;
#: `docker rmi` it to make it again)
TRIXIE_QEMU = "vdsm-ci-test/qemu-img:trixie"
SCRIPT_IN_BASE = "/run/vdsm-ci-qcow2.sh"


@pytest.fixture(scope="module")
def trixie_qemu(client: docker.DockerClient) -> str:
    if get_image(client, TRIXIE_QEMU) is not None:
        return TRIXIE_QEMU
    dockerfile = (
        f"FROM {BASE_IMAGE}\n"
        f"LABEL {L.OWNER}={L.OWNER_VALUE}\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends qemu-utils jq"
        " && rm -rf /var/lib/apt/lists/*\n"
    )
    ensure_base_image(client)
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=TRIXIE_QEMU, rm=True)
    return TRIXIE_QEMU


@pytest.fixture(scope="module")
def build_base_image(client: docker.DockerClient, sim_image: str) -> Iterator[str]:
    """The build base of the simulator image, made by the code prepare uses."""
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    tag = f"vdsm-ci-test/base:{run_id}"
    build_base(client, sim_image, "/run/disk.sh", tag, labels=L.owner_labels("base", run_id))
    try:
        yield tag
    finally:
        remove_image(client, tag)


def _run(client: docker.DockerClient, image: str, script: str, folder: Path) -> str:
    """Run ``script`` (bash) in a throwaway container of ``image`` with ``folder`` at /disks."""
    return bytes(
        client.containers.run(
            image,
            entrypoint=["bash", "-c", script],
            volumes={str(folder): {"bind": "/disks", "mode": "rw"}},
            remove=True,
            labels=L.owner_labels("test"),
        )
    ).decode()


def _info(image: Path) -> dict[str, object]:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(image)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def _disks(folder: Path) -> tuple[Path, Path, str]:
    """A qcow2 image holding an internal snapshot, and a raw image with data."""
    qcow2, raw = folder / "system.img", folder / "boot.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "64M"], check=True)
    subprocess.run(["qemu-img", "snapshot", "-c", "start-ready", str(qcow2)], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(raw), "32M"], check=True)
    with raw.open("r+b") as f:
        f.write(b"vdsm-ci boot sector")
    return qcow2, raw, hashlib.sha256(qcow2.read_bytes()).hexdigest()


def _check_conversion(folder: Path, qcow2: Path, raw: Path, digest: str, log: str) -> None:
    # qcow2: untouched, the snapshot still there
    assert hashlib.sha256(qcow2.read_bytes()).hexdigest() == digest, log
    info = _info(qcow2)
    assert info["format"] == "qcow2"
    assert [s["name"] for s in info.get("snapshots", [])] == ["start-ready"]  # type: ignore[attr-defined]
    listing = subprocess.run(
        ["qemu-img", "snapshot", "-l", str(qcow2)], check=True, capture_output=True, text=True
    ).stdout
    assert "start-ready" in listing
    # raw: now qcow2 with the same contents
    assert _info(raw)["format"] == "qcow2", log
    back = folder / "boot.raw"
    subprocess.run(
        ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(raw), str(back)], check=True
    )
    converted = back.read_bytes()[:19]
    back.unlink()
    assert converted == b"vdsm-ci boot sector"
    assert "converting boot.img from raw to qcow2" in log
    assert "system.img" not in log
    assert not list(folder.glob("*.tmp"))


def test_build_base_keeps_storage(client: docker.DockerClient, build_base_image: str) -> None:
    """virtual-dsm's reset.sh exits 13 without /storage (v7.41 src/reset.sh)."""
    out = _run(client, build_base_image, "test -d /storage && stat -c %F /storage", Path("/tmp"))
    assert out.strip() == "directory"
    assert not client.images.get(build_base_image).attrs["Config"].get("Volumes")


def test_conversion_in_the_build_base(
    client: docker.DockerClient, build_base_image: str, tmp_path: Path
) -> None:
    """The script as the build base runs it: qcow2 with a snapshot stays, raw becomes qcow2."""
    qcow2, raw, digest = _disks(tmp_path)
    log = _run(
        client,
        build_base_image,
        f"qemu-img --version | head -n 1; {SCRIPT_IN_BASE} /disks/system.img && "
        f"{SCRIPT_IN_BASE} /disks/boot.img 2>&1",
        tmp_path,
    )
    _check_conversion(tmp_path, qcow2, raw, digest, log)


@pytest.mark.parametrize("parser", ["jq", "sed"])
def test_conversion_with_qemu_10(
    client: docker.DockerClient, trixie_qemu: str, tmp_path: Path, parser: str
) -> None:
    """QEMU 10 (Debian trixie, as in virtual-dsm 7.41), with jq and with neither jq nor python3."""
    qcow2, raw, digest = _disks(tmp_path)
    shutil.copy(ASSETS / "qcow2.sh", tmp_path / "qcow2.sh")
    drop = "rm -f /usr/bin/jq; ! command -v python3; " if parser == "sed" else ""
    version = _run(client, trixie_qemu, "qemu-img --version | head -n 1", tmp_path)
    assert version.startswith("qemu-img version 10."), version
    log = _run(
        client,
        trixie_qemu,
        f"{drop}bash /disks/qcow2.sh /disks/system.img && bash /disks/qcow2.sh /disks/boot.img",
        tmp_path,
    )
    (tmp_path / "qcow2.sh").unlink()
    _check_conversion(tmp_path, qcow2, raw, digest, log)


def test_conversion_on_the_host(tmp_path: Path) -> None:
    """The host's QEMU (7.2 on Debian 12): the JSON has no children list there."""
    qcow2, raw, digest = _disks(tmp_path)
    script = str(ASSETS / "qcow2.sh")
    log = ""
    for disk in (qcow2, raw):
        done = subprocess.run(["bash", script, str(disk)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        log += done.stdout
    _check_conversion(tmp_path, qcow2, raw, digest, log)


def test_other_formats_stop_the_start(tmp_path: Path) -> None:
    image = tmp_path / "system.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(image), "8M"], check=True)
    before = image.read_bytes()
    done = subprocess.run(
        ["bash", str(ASSETS / "qcow2.sh"), str(image)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "is vmdk, neither raw nor qcow2" in done.stderr and "\n" not in done.stderr.strip()
    assert image.read_bytes() == before
