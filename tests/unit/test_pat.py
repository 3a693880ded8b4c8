"""fetch_pat against a real HTTP server on 127.0.0.1 (with Range support and connection drops)."""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vdsmlib.errors import VdsmError
from vdsmlib.pat import PatError, PatSpec, fetch_pat, pat_url

SIZE = 3 * 1024 * 1024 + 12345  # a few MB, not a multiple of the chunk size
NAME = "DSM_VirtualDSM_99999.pat"


@dataclass
class Served:
    """What the test server serves and how it misbehaves."""

    files: dict[str, bytes] = field(default_factory=dict)
    ranges: bool = True
    # False: no Content-Length, the body ends when the connection closes.
    send_length: bool = True
    # Drop the connection after sending this many body bytes, for the next N responses.
    drop_after: int | None = None
    drops_left: int = 0
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served: Served

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        served = self.server.served  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        body = served.files.get(self.path)
        if body is None:
            served.requests.append((self.path, rng, 404))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        status = 200
        if rng and served.ranges:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            assert m, rng
            start = int(m.group(1))
            if start >= len(body):
                served.requests.append((self.path, rng, 416))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        served.requests.append((self.path, rng, status))
        payload = body[start:]
        self.send_response(status)
        if served.send_length:
            self.send_header("Content-Length", str(len(payload)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.send_header("Accept-Ranges", "bytes" if served.ranges else "none")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if served.drop_after is not None and served.drops_left > 0:
            served.drops_left -= 1
            self.wfile.write(payload[: served.drop_after])
            self.wfile.flush()
            # Close the socket mid-body: the client sees an incomplete read.
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(payload)


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    served = Served()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.served = served  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def pat_bytes() -> bytes:
    return os.urandom(SIZE)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _serve(server: tuple[str, Served], data: bytes) -> tuple[str, Served]:
    base, served = server
    served.files[f"/release/{NAME}"] = data
    return f"{base}/release/{NAME}", served


def test_fresh_download_then_reuse_without_network(
    server: tuple[str, Served], pat_bytes: bytes, tmp_path: Path
) -> None:
    url, served = _serve(server, pat_bytes)
    spec = PatSpec(url=url, size=SIZE, sha256=_sha(pat_bytes))

    pat = fetch_pat(spec, tmp_path)

    assert pat.path == tmp_path / NAME
    assert pat.path.read_bytes() == pat_bytes
    assert (pat.size, pat.sha256, pat.reused) == (SIZE, _sha(pat_bytes), False)
    record = json.loads((tmp_path / f"{NAME}.json").read_text())
    assert record["url"] == url
    assert record["size"] == SIZE
    assert record["sha256"] == _sha(pat_bytes)
    assert record["fetched_at"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME, f"{NAME}.json"]

    # Second call: reused from the cache, the server sees no request at all.
    served.files.clear()
    before = len(served.requests)
    again = fetch_pat(spec, tmp_path)
    assert again.reused is True
    assert again.sha256 == pat.sha256
    assert len(served.requests) == before


def test_progress_bar_does_not_break_download(
    server: tuple[str, Served], pat_bytes: bytes, tmp_path: Path
) -> None:
    url, _ = _serve(server, pat_bytes)
    pat = fetch_pat(PatSpec(url=url), tmp_path, progress=True)
    assert pat.sha256 == _sha(pat_bytes)


def test_resume_after_dropped_connection_in_a_later_call(
    server: tuple[str, Served], pat_bytes: bytes, tmp_path: Path
) -> None:
    url, served = _serve(server, pat_bytes)
    served.drop_after = 1_000_000
    served.drops_left = 1
    spec = PatSpec(url=url, size=SIZE)

    with pytest.raises(PatError, match="interrupted") as exc:
        fetch_pat(spec, tmp_path, attempts=1)
    assert "resume" in str(exc.value)
    part = tmp_path / f"{NAME}.part"
    assert part.exists()
    kept = part.stat().st_size
    assert 0 < kept <= 1_000_000
    assert not (tmp_path / NAME).exists()

    pat = fetch_pat(spec, tmp_path)

    assert pat.path.read_bytes() == pat_bytes
    assert served.requests[-1] == (f"/release/{NAME}", f"bytes={kept}-", 206)
    assert not part.exists()


def test_resume_within_one_call(
    server: tuple[str, Served], pat_bytes: bytes, tmp_path: Path
) -> None:
    url, served = _serve(server, pat_bytes)
    served.drop_after = 500_000
    served.drops_left = 2

    pat = fetch_pat(PatSpec(url=url, sha256=_sha(pat_bytes)), tmp_path, attempts=3)

    assert pat.path.read_bytes() == pat_bytes
    statuses = [status for _, _, status in served.requests]
    assert statuses == [200, 206, 206]


def test_server_without_range_support_restarts_from_zero(
    server: tuple[str, Served], pat_bytes: bytes, tmp_path: Path
) -> None:
    url, served = _serve(server, pat_bytes)
    served.ranges = False
    (tmp_path / f"{NAME}.part").write_bytes(b"garbage that must not end up in the file")

    pat = fetch_pat(PatSpec(url=url, size=SIZE), tmp_path)

    assert pat.path.read_bytes() == pat_bytes
    assert served.requests[-1][2] == 200


def test_404_leaves_nothing_behind(server: tuple[str, Served], tmp_path: Path) -> None:
    base, _ = server
    url = f"{base}/release/missing.pat"
    (tmp_path / "missing.pat.part").write_bytes(b"left from an older attempt")

    with pytest.raises(PatError) as exc:
        fetch_pat(PatSpec(url=url), tmp_path / "cache")
    with pytest.raises(PatError):
        fetch_pat(PatSpec(url=url), tmp_path)

    message = str(exc.value)
    assert "\n" not in message
    assert url in message and "404" in message and "local .pat" in message
    assert isinstance(exc.value, VdsmError)
    assert list((tmp_path / "cache").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_size_mismatch_leaves_nothing_in_cache(
    server: tuple[str, Served], pat_bytes: bytes, tmp_path: Path
) -> None:
    url, _ = _serve(server, pat_bytes)

    with pytest.raises(PatError, match=f"announces {SIZE} bytes but params expect {SIZE + 1}"):
        fetch_pat(PatSpec(url=url, size=SIZE + 1), tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_detected_after_transfer_without_content_length(
    server: tuple[str, Served], pat_bytes: bytes, tmp_path: Path
) -> None:
    # Without Content-Length the size is only known by measuring the downloaded file.
    url, served = _serve(server, pat_bytes)
    served.send_length = False
    spec = PatSpec(url=url, size=SIZE - 1)
    with pytest.raises(PatError, match=f"has {SIZE} bytes, params expect {SIZE - 1}"):
        fetch_pat(spec, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_expected_sha_mismatch_errors_and_leaves_nothing(
    server: tuple[str, Served], pat_bytes: bytes, tmp_path: Path
) -> None:
    url, _ = _serve(server, pat_bytes)
    wrong = "0" * 64

    with pytest.raises(PatError, match=f"sha256 {_sha(pat_bytes)}, params expect {wrong}"):
        fetch_pat(PatSpec(url=url, sha256=wrong), tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_reissued_pat_warns_and_records_history(
    server: tuple[str, Served],
    pat_bytes: bytes,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, served = _serve(server, pat_bytes)
    first = fetch_pat(PatSpec(url=url), tmp_path)
    first.path.unlink()  # e.g. removed to save space; the record stays

    reissued = bytes([pat_bytes[0] ^ 0xFF]) + pat_bytes[1:]
    served.files[f"/release/{NAME}"] = reissued
    with caplog.at_level(logging.WARNING, logger="vdsmlib.pat"):
        second = fetch_pat(PatSpec(url=url), tmp_path)

    assert second.sha256 == _sha(reissued) != first.sha256
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("changed" in w and first.sha256 in w and second.sha256 in w for w in warnings)
    record = json.loads((tmp_path / f"{NAME}.json").read_text())
    assert record["sha256"] == second.sha256
    assert record["previous"][0]["sha256"] == first.sha256


def test_same_pat_again_does_not_warn(
    server: tuple[str, Served],
    pat_bytes: bytes,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, _ = _serve(server, pat_bytes)
    first = fetch_pat(PatSpec(url=url), tmp_path)
    first.path.unlink()
    with caplog.at_level(logging.WARNING, logger="vdsmlib.pat"):
        fetch_pat(PatSpec(url=url), tmp_path)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_corrupted_cache_is_downloaded_again(
    server: tuple[str, Served], pat_bytes: bytes, tmp_path: Path
) -> None:
    url, served = _serve(server, pat_bytes)
    spec = PatSpec(url=url)
    pat = fetch_pat(spec, tmp_path)
    with open(pat.path, "r+b") as f:
        f.write(b"\0\0\0\0")

    again = fetch_pat(spec, tmp_path)

    assert again.reused is False
    assert again.path.read_bytes() == pat_bytes
    assert len(served.requests) == 2


def test_local_path_is_verified_and_used_in_place(pat_bytes: bytes, tmp_path: Path) -> None:
    local = tmp_path / "my.pat"
    local.write_bytes(pat_bytes)
    cache = tmp_path / "cache"

    pat = fetch_pat(PatSpec(url=str(local), size=SIZE, sha256=_sha(pat_bytes)), cache)
    assert (pat.path, pat.reused, pat.sha256) == (local, True, _sha(pat_bytes))
    assert not cache.exists()

    via_file_url = fetch_pat(PatSpec(url=local.as_uri()), cache)
    assert via_file_url.path == local

    with pytest.raises(PatError, match="has 3158073 bytes, params expect 5"):
        fetch_pat(PatSpec(url=str(local), size=5), cache)
    with pytest.raises(PatError, match="does not exist"):
        fetch_pat(PatSpec(url=str(tmp_path / "nope.pat")), cache)


def test_unreachable_server_is_a_pat_error(tmp_path: Path) -> None:
    # A port that was just free: nothing listens there, the connection is refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.pat"
    with pytest.raises(PatError, match=re.escape(f"cannot download {url}")):
        fetch_pat(PatSpec(url=url), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_pat_url_follows_synology_pattern() -> None:
    assert pat_url("7.2.2", "72806") == (
        "https://global.synologydownload.com/download/DSM/release/7.2.2/72806/"
        "DSM_VirtualDSM_72806.pat"
    )
    assert pat_url("7.1.1", 42962, 1).endswith("/7.1.1/42962-1/DSM_VirtualDSM_42962.pat")
    assert PatSpec(url=pat_url("7.2.2", 72806)).name == "DSM_VirtualDSM_72806.pat"


def test_spec_validation() -> None:
    with pytest.raises(PatError, match="64 hex"):
        PatSpec(url="http://x/a.pat", sha256="abc")
    with pytest.raises(PatError, match="plain file name"):
        PatSpec(url="http://x/a.pat", filename="../a.pat")
    assert PatSpec(url="http://x/a.pat", filename="b.pat").name == "b.pat"


def test_concurrent_fetches_download_once(
    server: tuple[str, Served], pat_bytes: bytes, tmp_path: Path
) -> None:
    """Two builds sharing a cache: one downloads, the other waits and reuses the result."""
    from concurrent.futures import ThreadPoolExecutor

    url, served = _serve(server, pat_bytes)
    spec = PatSpec(url=url, size=SIZE, sha256=_sha(pat_bytes))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: fetch_pat(spec, tmp_path), range(4)))
    assert sorted(r.reused for r in results) == [False, True, True, True]
    assert {r.path for r in results} == {tmp_path / NAME}
    assert len([r for r in served.requests if r[2] in (200, 206)]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME, f"{NAME}.json"]
