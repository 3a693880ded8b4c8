"""File Station on the simulated DSM, driven by a stock client (N4S4/synology-api's
``FileStation``, unchanged) and by the request forms of Synology's File Station API guide.

The guest runs on the host here with ``SIM_VOLUME_ROOT`` a directory of the test's: the
directory the guest's SMB and NFS servers serve as /volume1 in the image, so a file File Station
wrote is read back from there (and one written there is listed by File Station).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sim_dsm import ADMIN_PASSWORD, ADMIN_USER, Sim
from synology_api.filestation import FileStation
from test_webapi_stock_clients import _client

from tests.poll import poll
from tests.sim.test_guest_api import call, err, ok
from vdsmlib.readiness import NotReady

SHARE = "files"


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return tmp_path / "volume1"


@pytest.fixture
def fsim(sim_factory: Callable[..., Sim], volume: Path) -> Sim:
    return sim_factory(SIM_VOLUME_ROOT=str(volume))


def _fs(sim: Sim) -> FileStation:
    client: FileStation = _client(sim, FileStation, interactive_output=False)
    return client


def _make_share(sim: Sim, sid: str, name: str = SHARE) -> None:
    shareinfo = json.dumps({"name": name, "vol_path": "/volume1"})
    ok(
        call(
            sim.url,
            api="SYNO.Core.Share",
            version=1,
            method="create",
            name=name,
            shareinfo=shareinfo,
            _sid=sid,
        )
    )


def _wait_task(sim: Sim, sid: str, api: str, taskid: str) -> dict[str, Any]:
    def finished() -> dict[str, Any]:
        data: dict[str, Any] = ok(
            call(sim.url, api=api, version=2, method="status", taskid=json.dumps(taskid), _sid=sid)
        )
        if not data["finished"]:
            raise NotReady(f"{api} task {taskid} runs: {data}")
        return data

    result: dict[str, Any] = poll(finished, timeout=30, what=f"{api} task {taskid}")
    return result


def test_upload_list_read_copy_md5_download_delete(fsim: Sim, volume: Path, tmp_path: Path) -> None:
    fs = _fs(fsim)
    sid = fs.session.sid
    _make_share(fsim, sid)
    payload = os.urandom(3 * 65536 + 123)
    source = tmp_path / "report.bin"
    source.write_bytes(payload)
    # multipart upload, as the stock client sends it (fields, then the file)
    answer = fs.upload_file(
        f"/{SHARE}/in", str(source), create_parents=True, overwrite=True, progress_bar=False
    )
    assert answer["success"] is True, answer  # type: ignore[index]
    # what SMB and NFS serve: the same bytes under /volume1/<share>
    assert (volume / SHARE / "in" / "report.bin").read_bytes() == payload
    # listed with additional (the guide's names)
    listed = fs.get_file_list(
        f"/{SHARE}/in", additional=["real_path", "size", "owner", "time", "perm", "type"]
    )
    (entry,) = listed["data"]["files"]  # type: ignore[index]
    assert entry["name"] == "report.bin" and entry["path"] == f"/{SHARE}/in/report.bin"
    add = entry["additional"]
    assert add["real_path"] == f"/volume1/{SHARE}/in/report.bin"
    assert add["size"] == len(payload) and add["type"] == "BIN"
    assert set(add["owner"]) == {"user", "group", "uid", "gid"}
    assert set(add["time"]) == {"atime", "mtime", "ctime", "crtime"}
    assert "posix" in add["perm"]
    info = fs.get_file_info(f"/{SHARE}/in/report.bin")
    assert info["data"]["files"][0]["isdir"] is False  # type: ignore[index]
    # a file written beside File Station (as over SMB or NFS) is listed by it
    (volume / SHARE / "in" / "from-smb.txt").write_text("written over SMB\n")
    names = [f["name"] for f in fs.get_file_list(f"/{SHARE}/in")["data"]["files"]]  # type: ignore[index]
    assert names == ["from-smb.txt", "report.bin"]
    # copy into a new folder
    made = fs.create_folder(f"/{SHARE}", "copies")
    assert made["data"]["folders"][0]["path"] == f"/{SHARE}/copies"  # type: ignore[index]
    started = fs.start_copy_move(f"/{SHARE}/in/report.bin", f"/{SHARE}/copies", overwrite=True)
    _wait_task(fsim, sid, "SYNO.FileStation.CopyMove", started["taskid"])  # type: ignore[index]
    assert (volume / SHARE / "copies" / "report.bin").read_bytes() == payload
    # MD5 as a background task
    md5 = fs.start_md5_calc(f"/{SHARE}/copies/report.bin")
    done = _wait_task(fsim, sid, "SYNO.FileStation.MD5", md5["taskid"])  # type: ignore[index]
    assert done["md5"] == hashlib.md5(payload).hexdigest()
    # download it
    into = tmp_path / "down"
    fs.get_file(f"/{SHARE}/copies/report.bin", "download", dest_path=str(into))
    assert (into / "report.bin").read_bytes() == payload
    # delete (the blocking form) and it is gone from the volume
    gone = fs.delete_blocking_function(f"/{SHARE}/copies/report.bin")
    assert gone["success"] is True, gone  # type: ignore[index]
    assert not (volume / SHARE / "copies" / "report.bin").exists()


def _upload(sim: Sim, sid: str, name: str, data: bytes, **fields: str) -> dict[str, Any]:
    """The guide's form: api/method/version in the URL, the fields, the file last."""
    resp = requests.post(
        f"{sim.url}/webapi/entry.cgi",
        params={"api": "SYNO.FileStation.Upload", "version": "2", "method": "upload", "_sid": sid},
        files=[*((k, (None, v)) for k, v in fields.items()), ("file", (name, data))],
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


def test_upload_overwrite_semantics(fsim: Sim, volume: Path) -> None:
    sid = _fs(fsim).session.sid
    _make_share(fsim, sid)
    target = volume / SHARE / "a.txt"
    assert ok(_upload(fsim, sid, "a.txt", b"one", path=f"/{SHARE}"))["blSkip"] is False
    # left out: an existing file is 1805
    assert err(_upload(fsim, sid, "a.txt", b"two", path=f"/{SHARE}")) == 1805
    assert ok(_upload(fsim, sid, "a.txt", b"two", path=f"/{SHARE}", overwrite="false"))["blSkip"]
    assert target.read_bytes() == b"one"
    ok(_upload(fsim, sid, "a.txt", b"three", path=f"/{SHARE}", overwrite="true"))
    assert target.read_bytes() == b"three"
    # into a folder that does not exist: 408 unless create_parents
    assert err(_upload(fsim, sid, "b.txt", b"x", path=f"/{SHARE}/new")) == 408
    ok(_upload(fsim, sid, "b.txt", b"x", path=f"/{SHARE}/new", create_parents="true"))
    assert (volume / SHARE / "new" / "b.txt").read_bytes() == b"x"
    # an unknown shared folder: 408; nothing left in the upload area
    assert err(_upload(fsim, sid, "c.txt", b"x", path="/nope")) == 408
    assert list((volume / "@sim_upload").iterdir()) == []


def test_list_sorting_paging_patterns_rename_dirsize(fsim: Sim, volume: Path) -> None:
    sid = _fs(fsim).session.sid
    _make_share(fsim, sid)
    base = volume / SHARE
    base.mkdir(parents=True, exist_ok=True)  # as the guest's data plane makes it
    for name, size in (("b.log", 30), ("a.txt", 10), ("c.txt", 20)):
        (base / name).write_bytes(b"x" * size)
    (base / "sub").mkdir()

    def names(**params: Any) -> list[str]:
        data = ok(
            call(
                fsim.url,
                api="SYNO.FileStation.List",
                version=2,
                method="list",
                folder_path=f'"/{SHARE}"',
                _sid=sid,
                **params,
            )
        )
        return [f["name"] for f in data["files"]]

    assert names() == ["sub", "a.txt", "b.log", "c.txt"]  # folders first, then by name
    assert names(sort_by="size", sort_direction="desc") == ["sub", "b.log", "c.txt", "a.txt"]
    assert names(offset=1, limit=2) == ["a.txt", "b.log"]
    assert names(pattern="*.txt") == ["a.txt", "c.txt"]
    assert names(filetype="dir") == ["sub"]
    renamed = ok(
        call(
            fsim.url,
            api="SYNO.FileStation.Rename",
            version=2,
            method="rename",
            path=f'["/{SHARE}/a.txt"]',
            name='["z.txt"]',
            _sid=sid,
        )
    )
    assert renamed["files"][0]["path"] == f"/{SHARE}/z.txt"
    assert (base / "z.txt").exists() and not (base / "a.txt").exists()
    started = ok(
        call(
            fsim.url,
            api="SYNO.FileStation.DirSize",
            version=2,
            method="start",
            path=f'["/{SHARE}"]',
            _sid=sid,
        )
    )
    sized = _wait_task(fsim, sid, "SYNO.FileStation.DirSize", started["taskid"])
    assert (sized["num_file"], sized["total_size"]) == (3, 60)
    stopped = ok(
        call(
            fsim.url,
            api="SYNO.FileStation.DirSize",
            version=2,
            method="stop",
            taskid=json.dumps(started["taskid"]),
            _sid=sid,
        )
    )
    assert stopped is None
    assert (
        err(
            call(
                fsim.url,
                api="SYNO.FileStation.DirSize",
                version=2,
                method="status",
                taskid=json.dumps(started["taskid"]),
                _sid=sid,
            )
        )
        == 599
    )


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_large_upload_streams_to_disk(fsim: Sim, volume: Path) -> None:
    """100 MiB through multipart: the guest's peak memory grows by far less than the file."""
    sid = _fs(fsim).session.sid
    _make_share(fsim, sid)
    size = 100 << 20
    block = os.urandom(1 << 20)

    def body() -> Any:
        boundary = "simboundary42"
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n'
            f'/{SHARE}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        for _ in range(size >> 20):
            yield block
        yield f"\r\n--{boundary}--\r\n".encode()

    head = len(next(body()))
    length = head + size + len(b"\r\n--simboundary42--\r\n")
    before = _peak_rss_kib(fsim.process.pid)
    resp = requests.post(
        f"{fsim.url}/webapi/entry.cgi",
        params={"api": "SYNO.FileStation.Upload", "version": "2", "method": "upload", "_sid": sid},
        data=body(),
        headers={
            "Content-Type": "multipart/form-data; boundary=simboundary42",
            "Content-Length": str(length),
        },
        timeout=300,
    )
    ok(resp.json())
    assert (volume / SHARE / "big.bin").stat().st_size == size
    grown = _peak_rss_kib(fsim.process.pid) - before
    print(f"peak memory grew by {grown} KiB for a {size >> 10} KiB upload")
    assert grown < (size >> 10) // 4


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs as /volume1, to fill (mounting needs root, as the project's machines are)."""
    root = tmp_path / "small-volume1"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


@pytest.mark.needs_root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root; .ci/run runs it as root")
def test_over_https_and_a_full_volume(
    sim_factory: Callable[..., Sim], small_volume: Path, tmp_path: Path
) -> None:
    """DSM's 5001 serves File Station too; an upload larger than the free space is 416 and
    leaves nothing behind."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=simnas", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    sim = sim_factory(
        SIM_VOLUME_ROOT=str(small_volume),
        SIM_TLS_PORT="0",
        SIM_TLS_CERT=str(cert),
        SIM_TLS_KEY=str(key),
    )
    line = next(x for x in sim.server.log().splitlines() if "listening on https://" in x)
    https = line.split("listening on ", 1)[1].strip().rstrip("/")
    http = requests.Session()
    # verify=False below: DSM's self-signed certificate, as its clients accept it
    login = http.post(
        f"{https}/webapi/entry.cgi",
        data={"api": "SYNO.API.Auth", "version": "6", "method": "login",
              "account": ADMIN_USER, "passwd": ADMIN_PASSWORD},
        timeout=30, verify=False,
    ).json()  # fmt: skip
    sid = ok(login)["sid"]
    _make_share(sim, sid)

    def upload(name: str, data: bytes) -> dict[str, Any]:
        resp = http.post(
            f"{https}/webapi/entry.cgi",
            params={"api": "SYNO.FileStation.Upload", "version": "2", "method": "upload",
                    "_sid": sid},
            files=[("path", (None, f"/{SHARE}")), ("overwrite", (None, "true")),
                   ("file", (name, data))],
            timeout=60, verify=False,
        )  # fmt: skip
        result: dict[str, Any] = resp.json()
        return result

    small = os.urandom(64 << 10)
    ok(upload("small.bin", small))
    down = http.get(
        f"{https}/webapi/entry.cgi",
        params={"api": "SYNO.FileStation.Download", "version": "2", "method": "download",
                "path": f'["/{SHARE}/small.bin"]', "mode": "download", "_sid": sid},
        timeout=30, verify=False,
    )  # fmt: skip
    assert down.status_code == 200 and down.content == small
    assert err(upload("big.bin", os.urandom(4 << 20))) == 416
    assert not (small_volume / SHARE / "big.bin").exists()
    assert list((small_volume / "@sim_upload").iterdir()) == []
