"""Disk images through the host's ``qemu-img``, and the host QEMU version.

These call host binaries with :mod:`subprocess` and block; from async code wrap
them in :func:`asyncio.to_thread`. Example::

    >>> convert_to_qcow2("/storage/DSM_VirtualDSM_72806.system.img")
    True
    >>> [s.name for s in snapshots_in("/storage/DSM_VirtualDSM_72806.system.img")]
    ['final']
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vdsmlib.qemu.errors import QemuToolError

__all__ = [
    "SnapshotInfo",
    "convert_to_qcow2",
    "qemu_img_info",
    "qemu_version",
    "snapshots_in",
]

logger = logging.getLogger(__name__)

# Which Debian package provides which binary, for the "install it" hint.
_PACKAGES = {"qemu-img": "qemu-utils", "qemu-system-x86_64": "qemu-system-x86"}


@dataclass(frozen=True)
class SnapshotInfo:
    """One internal snapshot of one image, as QEMU lists it.

    ``node`` is the block node name when read through QMP, ``file`` the image
    path (both ``None`` when unknown). A snapshot that ``loadvm``/``-loadvm``
    can restore has ``vm_state_size > 0`` on one image (the VM state lives in
    one image only; the other images hold disk-only snapshots of the same name).
    """

    name: str
    vm_state_size: int
    date: datetime
    vm_clock_sec: float = 0.0
    snapshot_id: str = ""
    node: str | None = None
    file: str | None = None

    @classmethod
    def from_qemu(
        cls, data: Mapping[str, Any], *, node: str | None = None, file: str | None = None
    ) -> SnapshotInfo:
        """Build from a ``snapshots`` entry of query-block or ``qemu-img info``."""
        seconds = int(data.get("date-sec", 0)) + int(data.get("date-nsec", 0)) / 1e9
        return cls(
            name=str(data["name"]),
            vm_state_size=int(data.get("vm-state-size", 0)),
            date=datetime.fromtimestamp(seconds, tz=UTC),
            vm_clock_sec=int(data.get("vm-clock-sec", 0)) + int(data.get("vm-clock-nsec", 0)) / 1e9,
            snapshot_id=str(data.get("id", "")),
            node=node,
            file=file,
        )


def qemu_img_info(path: str | os.PathLike[str], *, qemu_img: str = "qemu-img") -> dict[str, Any]:
    """Return ``qemu-img info --output=json`` of an image as a dict.

    Uses ``-U`` (force-share) so that it also works while a running QEMU holds
    the image's lock; the answer is then as fresh as QEMU's last metadata flush,
    which is enough to read back a snapshot QEMU has finished saving.
    """
    path = Path(path)
    if not path.exists():
        raise QemuToolError(f"cannot inspect {path}: no such file")
    out = _run([qemu_img, "info", "--output=json", "-U", str(path)], timeout=60)
    try:
        info = json.loads(out)
    except json.JSONDecodeError as err:
        raise QemuToolError(f"{qemu_img} info {path} printed no JSON: {out[:200]!r}") from err
    if not isinstance(info, dict):
        raise QemuToolError(f"{qemu_img} info {path} printed {type(info).__name__}, not an object")
    return info


def snapshots_in(path: str | os.PathLike[str], *, qemu_img: str = "qemu-img") -> list[SnapshotInfo]:
    """List the internal snapshots of an image (empty for raw images)."""
    info = qemu_img_info(path, qemu_img=qemu_img)
    return [SnapshotInfo.from_qemu(s, file=str(path)) for s in info.get("snapshots", [])]


def convert_to_qcow2(path: str | os.PathLike[str], *, qemu_img: str = "qemu-img") -> bool:
    """Convert an image to qcow2 in place; return False if it already was qcow2.

    ``savevm`` needs every writable disk to support snapshots, and the
    virtual-dsm container attaches boot and system disks raw. The image is
    converted into a temporary file beside it and renamed over the original,
    so a failure or interrupt leaves the original untouched. QEMU must not be
    using the image.
    """
    path = Path(path)
    fmt = qemu_img_info(path, qemu_img=qemu_img).get("format")
    if fmt == "qcow2":
        logger.debug("%s is already qcow2", path)
        return False
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".qcow2-tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # The source format is given, never probed: probing a raw image is
        # what QEMU warns about, since guest data could pose as a header.
        _run(
            [qemu_img, "convert", "-f", str(fmt), "-O", "qcow2", str(path), str(tmp)], timeout=None
        )
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("converted %s from %s to qcow2", path, fmt)
    return True


def qemu_version(binary: str = "qemu-system-x86_64") -> str:
    """Return the version of a host QEMU binary, e.g. ``"7.2.22"``."""
    out = _run([binary, "--version"], timeout=30)
    match = re.search(r"version (\d+\.\d+\.\d+)", out)
    if match is None:
        raise QemuToolError(f"cannot find a version in the output of {binary} --version: {out!r}")
    return match.group(1)


def _run(argv: Sequence[str], *, timeout: float | None) -> str:
    """Run a host binary and return its stdout; raise QemuToolError on any failure."""
    command = " ".join(argv)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as err:
        tool = os.path.basename(argv[0])
        package = _PACKAGES.get(tool, "the package that provides it")
        raise QemuToolError(
            f"{argv[0]} not found on PATH; install it (apt-get install {package})"
        ) from err
    except subprocess.TimeoutExpired as err:
        raise QemuToolError(f"{command} did not finish within {timeout} s") from err
    if proc.returncode != 0:
        raise QemuToolError(
            f"{command} failed with exit code {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc.stdout
