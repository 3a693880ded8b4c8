"""Preflight: each missing prerequisite is one line that says how to get it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vdsmlib.build.preflight import PreflightError, preflight, required_disk_bytes
from vdsmlib.params import load_params


class _Engine:
    """An honest stand-in for the one call preflight makes: docker info's root dir."""

    def __init__(self, root: Path):
        self.root = root

    def info(self) -> dict[str, str]:
        return {"DockerRootDir": str(self.root)}


def _bin_with(tmp_path: Path, *names: str) -> str:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in names:
        tool = folder / name
        tool.write_text("#!/bin/sh\nexit 0\n")
        tool.chmod(0o755)
    return str(folder)


def test_all_present_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "chromium", "ffmpeg"))
    monkeypatch.delenv("VDSM_CHROMIUM", raising=False)
    monkeypatch.setenv("VDSM_CI_MIN_FREE_GB", "0.001")
    preflight(load_params("sim"), _Engine(tmp_path))  # type: ignore[arg-type]


def test_missing_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "ffmpeg"))
    monkeypatch.delenv("VDSM_CHROMIUM", raising=False)
    with pytest.raises(PreflightError, match=r"apt-get install chromium") as err:
        preflight(load_params("sim"), _Engine(tmp_path))  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_missing_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "chromium"))
    monkeypatch.delenv("VDSM_CHROMIUM", raising=False)
    with pytest.raises(PreflightError, match=r"apt-get install ffmpeg"):
        preflight(load_params("sim"), _Engine(tmp_path))  # type: ignore[arg-type]


def test_too_little_disk_names_the_need_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "chromium", "ffmpeg"))
    monkeypatch.setenv("VDSM_CI_MIN_FREE_GB", "1000000")
    with pytest.raises(PreflightError, match=r"too little free disk.*vdsm clean"):
        preflight(load_params("sim"), _Engine(tmp_path))  # type: ignore[arg-type]


def test_real_dsm_needs_more_disk_than_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VDSM_CI_MIN_FREE_GB", raising=False)
    assert required_disk_bytes(load_params("7.2.2")) == 20_000_000_000
    assert required_disk_bytes(load_params("sim")) < required_disk_bytes(load_params("7.2.2"))
