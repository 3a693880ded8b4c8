"""Preflight: each missing prerequisite is one line that says how to get it."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from vdsmlib.params import load_params
from vdsmlib.pipeline.preflight import (
    GB,
    GIB,
    MIB,
    InstallFigures,
    PreflightError,
    disk_need,
    preflight,
    required_disk_bytes,
)


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
    assert required_disk_bytes(load_params("sim")) < required_disk_bytes(load_params("7.2.2"))


def test_disk_need_of_real_dsm_is_reckoned_from_its_params() -> None:
    """virtual-dsm v7.41 src/install.sh: 14 GiB free to install, a 10 GiB raw system image."""
    need = disk_need(load_params("7.2.2"))  # ram 2G, disk_size 16G
    # one copy: what DSM writes to boot/system (2 GiB) + data disk (512 MiB) + VM state (2 GiB)
    assert need.copy == 2 * GIB + 512 * MIB + 2 * GIB
    # install: the preallocated system image and its qcow2 copy, more than the 14 GiB minimum
    assert need.install == 10_738_466_816 + need.copy
    assert need.total == max(need.install, 4 * need.copy)
    assert 19 * GB < need.total < 20 * GB


def test_disk_need_follows_ram_disk_size_and_allocate() -> None:
    base = disk_need(load_params("7.2.2"))
    more_ram = disk_need(load_params("7.2.2", {"vm": {"ram": "6G"}}))
    assert more_ram.copy == base.copy + 4 * GIB
    assert more_ram.total == 4 * more_ram.copy
    small_disk = disk_need(load_params("7.2.2", {"vm": {"disk_size": "100M"}}))
    assert small_disk.copy == base.copy - 412 * MIB
    # ALLOCATE=N: the system image is sparse, but the install still insists on 14 GiB free
    sparse = disk_need(load_params("7.2.2", {"env": {"ALLOCATE": "N"}}))
    assert sparse.install == 15_032_385_536 < base.install


def test_too_little_disk_names_the_number_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reckoned need (no override) in one line, with the reckoning and the fix."""
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "chromium", "ffmpeg"))
    monkeypatch.delenv("VDSM_CHROMIUM", raising=False)
    monkeypatch.delenv("VDSM_CI_MIN_FREE_GB", raising=False)
    monkeypatch.setattr(
        "vdsmlib.pipeline.preflight.INSTALL_FIGURES",
        {"sim-build": InstallFigures(install_free=10**15, system_image=0, written=0)},
    )
    with pytest.raises(PreflightError) as err:
        preflight(load_params("sim"), _Engine(tmp_path))  # type: ignore[arg-type]
    message = str(err.value)
    assert "\n" not in message
    assert "1000000.0 GB needed for sim (the install needs 1000000.0 GB" in message
    assert "vdsm clean" in message


def test_out_dir_space_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "chromium", "ffmpeg"))
    monkeypatch.delenv("VDSM_CHROMIUM", raising=False)
    monkeypatch.setenv("VDSM_CI_MIN_FREE_GB", "0.001")
    preflight(load_params("sim"), _Engine(tmp_path), tmp_path / "out" / "new")  # type: ignore[arg-type]
    monkeypatch.setattr("vdsmlib.pipeline.preflight.OUT_DIR_BYTES", 10**18)
    with pytest.raises(PreflightError, match=r"run folder in .*pass another out_dir"):
        preflight(load_params("sim"), _Engine(tmp_path), tmp_path / "out")  # type: ignore[arg-type]


# -- a real-DSM target (base.source: registry): what the machine lacks, in one line ----------


class _RegistryEngine(_Engine):
    """The engine as preflight asks it about a registry target: the base image is not there;
    the registry look-up (``GET /distribution/<image>/json``) fails as dockerd's does without
    a route to the registry, or answers."""

    def __init__(self, root: Path, *, reachable: bool):
        super().__init__(root)
        self.reachable = reachable
        self.images = self
        self.api = self
        self.asked: list[str] = []

    def get(self, image: str) -> None:
        raise docker.errors.ImageNotFound(f"No such image: {image}")

    def inspect_distribution(self, image: str) -> dict[str, object]:
        self.asked.append(image)
        if not self.reachable:
            response = requests.Response()
            response.status_code = 500
            raise docker.errors.APIError(
                "500 Server Error", response, explanation='Get "https://registry-1.docker.io/v2/":'
                " dial tcp: lookup registry-1.docker.io: no such host",
            )  # fmt: skip
        return {"Descriptor": {"digest": "sha256:" + "0" * 64}}


class _HeadOk(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pat_server() -> Iterator[str]:
    """A local HTTP server answering HEAD: a PAT URL this machine reaches."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _HeadOk)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/DSM_VirtualDSM_72806.pat"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns


def _real_dsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pat_url: str) -> Any:
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "chromium", "ffmpeg"))
    monkeypatch.delenv("VDSM_CHROMIUM", raising=False)
    monkeypatch.setenv("VDSM_CI_MIN_FREE_GB", "0.001")
    monkeypatch.setenv("VDSM_CI_CACHE", str(tmp_path / "cache"))  # no PAT cached
    return load_params("7.2.2", {"pat": {"url": pat_url}, "vm": {"accelerator": "tcg"}})


def test_real_dsm_target_says_everything_it_lacks_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/DSM_VirtualDSM_72806.pat"
    params = _real_dsm(tmp_path, monkeypatch, url)
    engine = _RegistryEngine(tmp_path, reachable=False)
    with pytest.raises(PreflightError) as exc:
        preflight(params, engine)  # type: ignore[arg-type]
    line = str(exc.value)
    assert "\n" not in line
    assert line.startswith("this machine lacks what target 7.2.2 needs, before anything is pulled")
    assert engine.asked == ["vdsm/virtual-dsm:7.41"]  # asked, nothing pulled
    assert "(1) the base image vdsm/virtual-dsm:7.41 is not in the Docker engine" in line
    assert "lookup registry-1.docker.io: no such host" in line and "`docker load`" in line
    assert f"(2) the PAT is not cached and {url} cannot be downloaded from here" in line
    assert str(tmp_path / "cache" / "pat" / "DSM_VirtualDSM_72806.pat") in line
    # the accelerator in the same line: TCG and what it costs (params: boot 1800 s x 10)
    assert "DSM would run under TCG (accelerator=tcg from params)" in line
    assert "about 10x slower" in line and "up to 5.0 h for DSM's first boot" in line


def test_real_dsm_target_with_everything_reachable_passes_and_notes_tcg(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pat_server: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    params = _real_dsm(tmp_path, monkeypatch, pat_server)
    preflight(params, _RegistryEngine(tmp_path, reachable=True))  # type: ignore[arg-type]
    (note,) = [r.getMessage() for r in caplog.records if "TCG" in r.getMessage()]
    assert note.startswith("target 7.2.2: DSM would run under TCG")


def test_simulator_target_asks_no_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "chromium", "ffmpeg"))
    monkeypatch.delenv("VDSM_CHROMIUM", raising=False)
    monkeypatch.setenv("VDSM_CI_MIN_FREE_GB", "0.001")
    engine = _RegistryEngine(tmp_path, reachable=False)
    preflight(load_params("sim"), engine)  # type: ignore[arg-type]
    assert engine.asked == []
