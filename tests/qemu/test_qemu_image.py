"""qemu-img helpers against real images."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from vdsmlib.qemu import (
    QemuToolError,
    QmpSession,
    convert_to_qcow2,
    qemu_img_info,
    qemu_version,
    snapshots_in,
)

pytestmark = pytest.mark.qemu


def _raw_bytes(path: Path, tmp_path: Path) -> bytes:
    out = tmp_path / "readback.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(path), str(out)], check=True)
    data = out.read_bytes()
    out.unlink()
    return data


def test_info_of_a_qcow2_image(make_disk) -> None:
    disk = make_disk("sys", size="8M")
    info = qemu_img_info(disk.path)
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == 8 * 2**20
    assert snapshots_in(disk.path) == []


def test_convert_raw_to_qcow2_in_place_keeps_data(make_disk, tmp_path: Path) -> None:
    disk = make_disk("boot", fmt="raw", size="4M")
    with disk.path.open("r+b") as f:
        f.seek(2**20)
        f.write(b"DSM boot sector" * 100)
    os.chmod(disk.path, 0o640)
    before = disk.path.read_bytes()

    assert convert_to_qcow2(disk.path) is True
    assert qemu_img_info(disk.path)["format"] == "qcow2"
    assert _raw_bytes(disk.path, tmp_path) == before
    assert disk.path.stat().st_mode & 0o777 == 0o640
    assert convert_to_qcow2(disk.path) is False  # already qcow2: nothing to do
    assert sorted(p.name for p in disk.path.parent.iterdir()) == ["boot.img"]


async def test_failed_convert_leaves_the_original(start_vm, make_disk) -> None:
    disk = make_disk("boot", fmt="raw", size="4M")
    before = disk.path.read_bytes()
    vm = start_vm(disk)  # QEMU holds a write lock: qemu-img convert must refuse
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        assert await qmp.status() == "running"  # so QEMU has opened the disk
    try:
        with pytest.raises(QemuToolError, match=r"qemu-img convert .* failed with exit code"):
            convert_to_qcow2(disk.path)
    finally:
        vm.kill()
    assert disk.path.read_bytes() == before
    assert sorted(p.name for p in disk.path.parent.iterdir()) == ["boot.img", "vm.log"]


def test_missing_qemu_img_says_what_to_install(make_disk) -> None:
    disk = make_disk("sys")
    with pytest.raises(QemuToolError, match=r"apt-get install qemu-utils"):
        qemu_img_info(disk.path, qemu_img="/nonexistent/qemu-img")


def test_missing_image_is_named(tmp_path: Path) -> None:
    with pytest.raises(QemuToolError, match="no such file"):
        qemu_img_info(tmp_path / "absent.qcow2")


def test_qemu_version_of_the_host_binary() -> None:
    out = subprocess.run(
        ["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=True
    ).stdout
    version = qemu_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert f"version {version}" in out
    with pytest.raises(QemuToolError, match="apt-get install qemu-system-x86"):
        qemu_version("/nonexistent/qemu-system-x86_64")
