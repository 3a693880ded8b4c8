"""Real host QEMU for the vdsmlib.qemu tests: tiny firmware-only VMs under TCG.

No kernel is needed: the firmware runs (and keeps looking for a boot device),
which is enough guest state for savevm/loadvm. Every QEMU started here is
killed by the fixture that started it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

QEMU = "qemu-system-x86_64"


def _require_qemu() -> None:
    if shutil.which(QEMU) is None or shutil.which("qemu-img") is None:
        pytest.fail(
            "needs qemu-system-x86_64 and qemu-img: apt-get install qemu-system-x86 qemu-utils"
        )


@dataclass(frozen=True)
class Disk:
    """A disk image to attach; ``hang_writes`` puts a blkdebug node under it."""

    path: Path
    fmt: str = "qcow2"
    read_only: bool = False
    hang_writes: bool = False

    @property
    def drive_id(self) -> str:
        return self.path.stem


@dataclass
class Vm:
    """A running QEMU process with QMP on ``socket``."""

    socket: Path
    process: subprocess.Popen[bytes]
    log: Path
    argv: list[str] = field(default_factory=list)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


def _disk_args(disk: Disk) -> list[str]:
    if disk.hang_writes:
        # qcow2 -> blkdebug -> file: the blkdebug node can suspend writes on a
        # breakpoint ("qemu-io NODE 'break pwritev NAME'"), which stalls a save
        # for as long as a test needs.
        node = disk.drive_id
        return [
            "-blockdev",
            f"driver=file,node-name={node}-file,filename={disk.path}",
            "-blockdev",
            f"driver=blkdebug,node-name={node}-debug,image={node}-file",
            "-blockdev",
            f"driver={disk.fmt},node-name={node},file={node}-debug",
            "-device",
            f"virtio-blk-pci,drive={node}",
        ]
    readonly = ",readonly=on" if disk.read_only else ""
    return [
        "-drive",
        f"file={disk.path},format={disk.fmt},if=none,id={disk.drive_id}{readonly}",
        "-device",
        f"virtio-blk-pci,drive={disk.drive_id}",
    ]


@pytest.fixture
def make_disk(tmp_path: Path) -> Callable[..., Disk]:
    """Create a small empty image: ``make_disk("sys0", fmt="raw", read_only=False)``."""
    _require_qemu()

    def make(name: str, *, fmt: str = "qcow2", size: str = "16M", **options: bool) -> Disk:
        path = tmp_path / f"{name}.{'qcow2' if fmt == 'qcow2' else 'img'}"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True, timeout=30
        )
        return Disk(path, fmt, **options)

    return make


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # Not tmp_path: a unix socket path must stay under ~107 bytes.
    path = Path(tempfile.mkdtemp(prefix="vdsm-qmp-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_vm(socket_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Vm]]:
    """Start QEMU: ``start_vm(disk, ..., paused=False, extra=[...], name="vm")``."""
    _require_qemu()
    started: list[Vm] = []

    def start(
        *disks: Disk, paused: bool = False, extra: Sequence[str] = (), name: str = "vm"
    ) -> Vm:
        sock = socket_dir / f"{name}.sock"
        log = tmp_path / f"{name}.log"
        argv = [
            QEMU,
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-machine",
            "q35",
            "-accel",
            "tcg",
            "-m",
            "64",
            "-qmp",
            f"unix:{sock},server=on,wait=off",
            *(arg for disk in disks for arg in _disk_args(disk)),
            *(["-S"] if paused else []),
            *extra,
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        vm = Vm(sock, process, log, argv)
        started.append(vm)
        return vm

    yield start
    for vm in started:
        vm.kill()
