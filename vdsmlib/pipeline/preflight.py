"""Checks that run before any container starts, each failing with one line that says what to do."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import DockerException

from vdsmlib.errors import VdsmError
from vdsmlib.params import Params

__all__ = [
    "DiskNeed",
    "PreflightError",
    "chromium_path",
    "disk_need",
    "preflight",
    "required_disk_bytes",
]

log = logging.getLogger(__name__)

GB = 1_000_000_000
GIB = 1024**3
MIB = 1024**2


class PreflightError(VdsmError):
    """Something the build needs is missing; the message says how to get it."""


@dataclass(frozen=True)
class InstallFigures:
    """What the install of a base image writes to /storage, by ``base.source``."""

    #: free space the install insists on in /storage before it starts
    install_free: int
    #: the raw system image it creates (preallocated unless ``ALLOCATE=N``)
    system_image: int
    #: what the guest writes to its boot and system disks (a qcow2 copy holds only that)
    written: int


#: vdsm/virtual-dsm v7.41 src/install.sh: MIN_SPACE=15032385536 ("need at least 14 GB"),
#: SYSTEM_SIZE=10738466816 created with fallocate unless ALLOCATE=N. DSM writes about 2 GiB
#: to boot and system disks (the predecessor's final image: about 3 GB with the base).
#: The simulator: at least 1 GiB free (install.sh's MIN_FREE_KB), a sparse 256 MiB system
#: image and a 64 MiB boot image that its guest barely writes.
INSTALL_FIGURES: dict[str, InstallFigures] = {
    "registry": InstallFigures(
        install_free=15_032_385_536, system_image=10_738_466_816, written=2 * GIB
    ),
    "sim-build": InstallFigures(install_free=GIB, system_image=0, written=64 * MIB),
}
#: what DSM writes to a fresh data disk (storage pool, volume, shares); capped by its size
DATA_WRITTEN = 512 * MIB
#: images holding a full copy of the configured disks at the build's peak: the start-ready and
#: final checkpoints, the final image, and the smoke container (writing to a disk of an image
#: copies the whole file into the container's layer)
COPIES = 4
#: the run folder: screenshots, videos, traces, executed notebooks
OUT_DIR_BYTES = 500_000_000


def _size_bytes(size: str) -> int:
    """``16G`` -> bytes (the sizes params accept: M, G, T)."""
    unit = {"M": MIB, "G": GIB, "T": 1024 * GIB}[size[-1]]
    return int(size[:-1]) * unit


@dataclass(frozen=True)
class DiskNeed:
    """The free Docker disk a full build of a target needs, and how it was reckoned."""

    total: int
    install: int
    copy: int
    copies: int = COPIES

    def explain(self) -> str:
        return (
            f"the install needs {self.install / GB:.1f} GB, then {self.copies} full copies of "
            f"the {self.copy / GB:.1f} GB configured disks (checkpoints start-ready and final, "
            "the final image, the smoke test's container)"
        )


def disk_need(params: Params) -> DiskNeed:
    """Free Docker disk a full build needs, from the target's params.

    One copy of the configured disks is what the guest wrote to its boot and system disks, to
    the data disk (qcow2, so only what DSM wrote: at most ``vm.disk_size``) and the VM state
    (at most ``vm.ram``). The install phase needs the base's own minimum, or the preallocated
    raw system image (``ALLOCATE=N`` in ``env`` makes it sparse) plus its qcow2 copy, whichever
    is more. Then the checkpoints, the final image and the smoke container each hold a copy.
    """
    figures = INSTALL_FIGURES[params.base.source]
    ram = _size_bytes(params.vm.ram)
    data = min(_size_bytes(params.vm.disk_size), DATA_WRITTEN)
    copy = figures.written + data + ram
    preallocated = params.env.get("ALLOCATE", "Y").strip().upper() not in ("N", "NO")
    system = figures.system_image if preallocated else 0
    install = max(figures.install_free, system + copy)
    return DiskNeed(total=max(install, COPIES * copy), install=install, copy=copy)


def required_disk_bytes(params: Params) -> int:
    """Free Docker disk a build needs (:func:`disk_need`).

    ``VDSM_CI_MIN_FREE_GB`` overrides it (for a machine whose Docker disk is known to be fine,
    and for testing the check itself).
    """
    override = os.environ.get("VDSM_CI_MIN_FREE_GB")
    if override:
        return int(float(override) * GB)
    return disk_need(params).total


def chromium_path() -> str | None:
    """``$VDSM_CHROMIUM``, else Debian's chromium."""
    override = os.environ.get("VDSM_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _docker_root(client: docker.DockerClient) -> Path | None:
    try:
        root = Path(str(client.info().get("DockerRootDir", "/var/lib/docker")))
    except DockerException:
        return None
    return root if root.exists() else None  # a remote engine: its disk is not ours to measure


def preflight(params: Params, client: docker.DockerClient, out_dir: Path | None = None) -> None:
    """Chromium, ffmpeg, free disk for Docker and the run folder.

    (Docker itself is checked when the client connects.)
    """
    if chromium_path() is None:
        raise PreflightError(
            "Chromium is missing: `apt-get install chromium` (or set VDSM_CHROMIUM to a "
            "Chromium binary)"
        )
    if shutil.which("ffmpeg") is None:
        raise PreflightError(
            "ffmpeg is missing (needed to record the wizard videos): `apt-get install ffmpeg`"
        )
    root = _docker_root(client)
    if root is not None:
        free = shutil.disk_usage(root).free
        need = required_disk_bytes(params)
        if free < need:
            why = (
                "VDSM_CI_MIN_FREE_GB"
                if os.environ.get("VDSM_CI_MIN_FREE_GB")
                else disk_need(params).explain()
            )
            raise PreflightError(
                f"too little free disk for Docker at {root}: {free / GB:.1f} GB free, "
                f"{need / GB:.1f} GB needed for {params.dsm_version} ({why}): free some space "
                "(`vdsm clean --checkpoints` removes old checkpoints) or move Docker's data-root "
                "to a bigger disk"
            )
    if out_dir is not None:
        folder = out_dir
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        free = shutil.disk_usage(folder).free
        if free < OUT_DIR_BYTES:
            raise PreflightError(
                f"too little free disk for the run folder in {out_dir}: {free / GB:.2f} GB "
                f"free, {OUT_DIR_BYTES / GB:.1f} GB needed for screenshots, videos and "
                "notebooks: free some space or pass another out_dir"
            )
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".vdsm-ci-probe-"):
                pass
        except OSError as err:
            raise PreflightError(
                f"cannot write the run folder in {out_dir} ({err.strerror}): make {folder} "
                "writable or pass another out_dir"
            ) from err
