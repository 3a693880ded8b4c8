"""Checks that run before any container starts, each failing with one line that says what to do."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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
    "registry_target_gaps",
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
    gaps, note = registry_target_gaps(params, client)
    if gaps:
        lacks = "; ".join(f"({i}) {gap}" for i, gap in enumerate(gaps, 1))
        raise PreflightError(
            f"this machine lacks what target {params.dsm_version} needs, before anything is "
            f"pulled: {lacks}" + (f"; and {note}" if note else "")
        )
    if note:
        log.warning("target %s: %s", params.dsm_version, note)
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


#: seconds each reachability check may take (the engine's registry look-up, the PAT's HEAD)
REACH_TIMEOUT = 15.0


def registry_target_gaps(
    params: Params, client: docker.DockerClient, *, timeout: float = REACH_TIMEOUT
) -> tuple[list[str], str]:
    """For a target whose base image comes from a registry (real DSM): what this machine
    lacks for it, each a sentence saying what to do, and a note on the accelerator (no KVM:
    what TCG costs), all found without pulling or downloading anything.

    - the base image: present in the engine, else the engine must reach its registry (asked
      through the engine, ``GET /distribution/<image>/json``: its proxy and mirrors count);
    - the PAT: cached and verified, else its URL's server must answer a HEAD request from here
      (what it answers is the download's business: a 404 fails it with what to fix);
    - KVM: ``/dev/kvm`` and the probe result cached for this kernel, if any (the probe itself
      runs later, in the prepare stage).
    A simulator target (``base.source: sim-build``) has none of these: ``([], "")``.
    """
    if params.base.source != "registry":
        return [], ""
    gaps: list[str] = []
    image = params.base.image
    if not _image_present(client, image):
        try:
            client.api.inspect_distribution(image)
        except DockerException as err:
            # an APIError's explanation is dockerd's own sentence ('Get "https://...": dial ...')
            reason = _first_line(getattr(err, "explanation", None) or err)
            gaps.append(
                f"the base image {image} is not in the Docker engine and the engine cannot "
                f"reach its registry ({reason}): give dockerd access (a proxy or a "
                f"registry mirror in /etc/docker/daemon.json), or `docker load` the image"
            )
    if params.pat is not None:
        gap = _pat_gap(params, timeout)
        if gap:
            gaps.append(gap)
    return gaps, _accelerator_note(params, client)


def _first_line(err: object) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _image_present(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except DockerException:
        return False
    return True


def _pat_gap(params: Params, timeout: float) -> str:
    import requests

    from vdsmlib.pat import PatError, PatSpec, cached_pat
    from vdsmlib.pipeline.base import cache_dir

    assert params.pat is not None
    spec = PatSpec(url=params.pat.url, size=params.pat.size, sha256=params.pat.sha256)
    folder = cache_dir() / "pat"
    try:
        if cached_pat(spec, folder) is not None:
            return ""
    except PatError as err:  # a local PAT that does not verify
        return f"the PAT {spec.url} does not verify ({_first_line(err)}): fix pat in params"
    if not spec.is_remote:
        return f"the PAT {spec.url} is missing: fix pat in params"
    try:
        requests.head(spec.url, timeout=timeout, allow_redirects=True).close()
    except requests.RequestException as err:
        host = urlsplit(spec.url).hostname
        reason = f"{type(err).__name__} reaching {host}"
        if "resolve" in str(err).lower():
            reason = f"{host} does not resolve"
    else:
        # any HTTP answer: the server is reachable (a 404 or a wrong size is the download's
        # own error, with what to fix in params)
        return ""
    return (
        f"the PAT is not cached and {spec.url} cannot be downloaded from here ({reason}): "
        f"download it elsewhere and put it at {folder / spec.name} (its size and sha256 are "
        "checked), or point pat.url at a copy this machine reaches"
    )


def _accelerator_note(params: Params, client: docker.DockerClient) -> str:
    """TCG (no ``/dev/kvm``, params, or a cached probe that fell back): what it costs."""
    from vdsmlib.pipeline.base import known_accelerator

    if params.vm.accelerator == "kvm":
        return ""
    known = known_accelerator(client, params)
    if isinstance(known, str) or known[0] != "tcg":
        return ""  # KVM, or not probed yet: the prepare stage probes it
    factor = params.timeouts.tcg_factor
    return (
        f"DSM would run under TCG ({known[1]}): software emulation, about {factor:g}x slower "
        f"than KVM (params timeouts.tcg_factor), so the build waits up to "
        f"{params.timeouts.boot * factor / 3600:.1f} h for DSM's first boot; a machine with "
        "KVM needs a tenth of that"
    )
