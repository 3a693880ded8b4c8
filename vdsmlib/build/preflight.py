"""Checks that run before any container starts, each failing with one line that says what to do."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import docker
from docker.errors import DockerException

from vdsmlib.errors import VdsmError
from vdsmlib.params import Params

__all__ = ["PreflightError", "chromium_path", "preflight", "required_disk_bytes"]

log = logging.getLogger(__name__)

GB = 1_000_000_000


class PreflightError(VdsmError):
    """Something the build needs is missing; the message says how to get it."""


def required_disk_bytes(params: Params) -> int:
    """Free Docker disk a build needs: 20 GB for real DSM, 4 GB for the simulator.

    ``VDSM_CI_MIN_FREE_GB`` overrides it (for a machine whose Docker disk is known to be fine,
    and for testing the check itself).
    """
    override = os.environ.get("VDSM_CI_MIN_FREE_GB")
    if override:
        return int(float(override) * GB)
    return 4 * GB if params.target == "sim" else 20 * GB


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


def preflight(params: Params, client: docker.DockerClient) -> None:
    """Chromium, ffmpeg, free disk. (Docker itself is checked when the client connects.)"""
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
            raise PreflightError(
                f"too little free disk for Docker at {root}: {free / GB:.1f} GB free, "
                f"{need / GB:.0f} GB needed for {params.dsm_version}: free some space "
                "(`vdsm clean` removes old checkpoints, `docker system prune`)"
            )
