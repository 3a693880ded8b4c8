"""Fetch and verify a Virtual DSM ``.pat`` (the DSM install image, about 350 MB).

Synology publishes no checksum for Virtual DSM PATs and has re-issued PATs under the same URL,
so this module records size and sha256 of the first download next to the file
(``<name>.json``) and warns when a later download differs. Downloads go to ``<name>.part`` and
resume with an HTTP ``Range`` request after an interruption; the file appears under its real
name only once size and checksum match.

Example::

    spec = PatSpec(url=pat_url("7.2.2", "72806"), size=361010261)
    pat = fetch_pat(spec, Path("~/.cache/vdsm/pat").expanduser(), progress=True)
    print(pat.path, pat.sha256, "cached" if pat.reused else "downloaded")

A local path instead of an URL is verified and used in place.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from vdsmlib.errors import VdsmError

__all__ = ["PAT_BASE_URL", "PatError", "PatFile", "PatSpec", "cached_pat", "fetch_pat", "pat_url"]

log = logging.getLogger(__name__)

PAT_BASE_URL = "https://global.synologydownload.com/download/DSM/release"

_CHUNK = 1024 * 1024
# Small network reads: when a connection drops, the bytes of the unfinished read are lost,
# so a small read keeps nearly everything that arrived for the resume.
_NET_CHUNK = 64 * 1024
_CONNECT_TIMEOUT = 15.0
# Between two chunks; a stalled transfer fails after this and can be resumed.
_READ_TIMEOUT = 60.0
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class PatError(VdsmError):
    """A PAT could not be fetched or does not match what was expected."""


@dataclass(frozen=True)
class PatSpec:
    """Where a PAT comes from and what it must look like.

    ``url`` is an http(s) URL or a local path (``file://`` URLs too). ``size`` and ``sha256``
    are checked when given. ``filename`` names the file in the cache; by default the last
    part of the URL (``DSM_VirtualDSM_72806.pat``).
    """

    url: str
    size: int | None = None
    sha256: str | None = None
    filename: str | None = None

    def __post_init__(self) -> None:
        if self.sha256 is not None and not _SHA256_RE.match(self.sha256.lower()):
            raise PatError(f"PatSpec.sha256 {self.sha256!r} is not 64 hex digits")
        if self.size is not None and self.size <= 0:
            raise PatError(f"PatSpec.size {self.size} must be positive")
        if self.filename is not None and ("/" in self.filename or self.filename in {"", ".", ".."}):
            raise PatError(f"PatSpec.filename {self.filename!r} must be a plain file name")

    @property
    def is_remote(self) -> bool:
        """True for http(s) URLs, False for local paths."""
        return urlsplit(self.url).scheme in {"http", "https"}

    @property
    def name(self) -> str:
        """The file name used in the cache."""
        if self.filename:
            return self.filename
        name = unquote(urlsplit(self.url).path).rstrip("/").rsplit("/", 1)[-1]
        if not name:
            raise PatError(f"cannot derive a file name from {self.url!r}; set PatSpec.filename")
        return name


@dataclass(frozen=True)
class PatFile:
    """A verified PAT on disk. ``reused`` is True when no download happened."""

    path: Path
    size: int
    sha256: str
    reused: bool


def pat_url(version: str, build: str | int, suffix: str | int | None = None) -> str:
    """The download URL of a Virtual DSM PAT.

    >>> pat_url("7.1.1", 42962, 1)
    'https://global.synologydownload.com/download/DSM/release/7.1.1/42962-1/DSM_VirtualDSM_42962.pat'
    """
    folder = f"{build}-{suffix}" if suffix not in (None, "") else f"{build}"
    return f"{PAT_BASE_URL}/{version}/{folder}/DSM_VirtualDSM_{build}.pat"


def cached_pat(spec: PatSpec, cache_dir: str | os.PathLike[str]) -> PatFile | None:
    """The verified PAT if :func:`fetch_pat` would find it without a download, else None.

    A local PAT (``file:`` or a path) is verified in place; a remote one must be in
    ``cache_dir`` and match the spec (a cached copy that does not is removed, as fetch_pat does).
    """
    if not spec.is_remote:
        return _verify_local(spec)
    cache = Path(cache_dir)
    return _reuse_cached(spec, cache / spec.name, _read_record(cache / f"{spec.name}.json"))


def fetch_pat(
    spec: PatSpec,
    cache_dir: str | os.PathLike[str],
    *,
    progress: object = None,
    session: requests.Session | None = None,
    attempts: int = 3,
) -> PatFile:
    """Return a verified PAT, downloading it into ``cache_dir`` unless a matching copy is there.

    ``progress`` truthy shows a tqdm progress bar. ``attempts`` bounds how many times an
    interrupted transfer is resumed within this call; a ``.part`` left by a failed call is
    resumed by the next call. Raises :class:`PatError` on HTTP errors, size or checksum
    mismatch.
    """
    if not spec.is_remote:
        return _verify_local(spec)
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / spec.name
    record_path = cache / f"{spec.name}.json"
    record = _read_record(record_path)

    reused = _reuse_cached(spec, final, record)
    if reused is not None:
        return reused
    with _exclusive(cache):
        # another build may have fetched it while this one waited for the lock
        record = _read_record(record_path)
        reused = _reuse_cached(spec, final, record)
        if reused is not None:
            return reused
        return _fetch(spec, cache, final, record_path, record, progress, session, attempts)


@contextlib.contextmanager
def _exclusive(cache: Path) -> Iterator[None]:
    """One download into ``cache`` at a time across processes (CI jobs sharing a cache).

    The lock is on the folder itself, so it leaves no lock file behind.
    """
    fd = os.open(cache, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process downloading into %s", cache)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _fetch(
    spec: PatSpec,
    cache: Path,
    final: Path,
    record_path: Path,
    record: dict[str, Any] | None,
    progress: object,
    session: requests.Session | None,
    attempts: int,
) -> PatFile:
    part = cache / f"{spec.name}.part"
    owns_session = session is None
    http = session if session is not None else requests.Session()
    try:
        for attempt in range(1, attempts + 1):
            try:
                _download(spec, part, http, progress=bool(progress))
                break
            except _Interrupted as err:
                if attempt == attempts:
                    raise PatError(
                        f"download of {spec.url} interrupted ({err}); {part} is kept, "
                        "call again to resume"
                    ) from err.__cause__
                log.warning("download of %s interrupted (%s); resuming", spec.url, err)
    finally:
        if owns_session:
            http.close()

    size, sha256 = _measure(part)
    try:
        _check(spec, size, sha256, source=spec.url)
    except PatError:
        part.unlink(missing_ok=True)
        raise
    if record and record.get("sha256") not in (None, sha256):
        log.warning(
            "PAT %s changed since %s: sha256 %s (size %s) was recorded, now %s (size %d); "
            "Synology re-issued it under the same URL. Pin the new sha256 in params once "
            "you trust it.",
            spec.url,
            record.get("fetched_at"),
            record.get("sha256"),
            record.get("size"),
            sha256,
            size,
        )
    os.replace(part, final)
    _write_record(record_path, spec.url, size, sha256, record)
    log.info("fetched %s (%d bytes, sha256 %s) into %s", spec.url, size, sha256, final)
    return PatFile(path=final, size=size, sha256=sha256, reused=False)


class _Interrupted(Exception):
    """A good response whose body ended early; the .part is kept for a resume."""


def _download(spec: PatSpec, part: Path, http: requests.Session, *, progress: bool) -> None:
    """Download (or resume) ``spec.url`` into ``part``; return when the body is complete."""
    offset = part.stat().st_size if part.exists() else 0
    if spec.size is not None and offset > spec.size:
        log.warning("discarding %s: larger (%d) than the expected %d", part, offset, spec.size)
        part.unlink()
        offset = 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = http.get(
            spec.url, headers=headers, stream=True, timeout=(_CONNECT_TIMEOUT, _READ_TIMEOUT)
        )
    except requests.RequestException as err:
        if offset:
            raise _Interrupted(f"cannot reconnect: {err}") from err
        raise PatError(
            f"cannot download {spec.url}: {err}. Check the network, or pass a local .pat path."
        ) from err
    with resp:
        if resp.status_code == 416 and offset:
            # The .part cannot be resumed (already complete, or the file changed): start over.
            log.warning("server refused to resume %s at byte %d; restarting", spec.url, offset)
            resp.close()
            part.unlink()
            return _download(spec, part, http, progress=progress)
        if resp.status_code not in (200, 206):
            if 400 <= resp.status_code < 500:
                # The URL itself is wrong: a leftover .part can never be completed.
                part.unlink(missing_ok=True)
            raise PatError(
                f"cannot download {spec.url}: HTTP {resp.status_code} {resp.reason}. "
                "Check the DSM version and build in params (or the URL), "
                "or pass a local .pat path."
            )
        if resp.status_code == 206:
            start, total = _content_range(resp.headers.get("Content-Range", ""))
            if start != offset:
                log.warning("server resumed %s at %s, not %d; restarting", spec.url, start, offset)
                resp.close()
                part.unlink()
                return _download(spec, part, http, progress=progress)
            mode = "ab"
        else:
            if offset:
                log.info("server ignored the Range request for %s; restarting", spec.url)
            offset = 0
            mode = "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if spec.size is not None and total is not None and total != spec.size:
            part.unlink(missing_ok=True)
            raise PatError(
                f"{spec.url} announces {total} bytes but params expect {spec.size}; "
                "the PAT was probably re-issued: check the size in params, "
                "or pass a local .pat path."
            )
        _stream(resp, part, mode, offset, total, spec.name, progress)
        return None


def _stream(
    resp: requests.Response,
    part: Path,
    mode: str,
    offset: int,
    total: int | None,
    name: str,
    progress: bool,
) -> None:
    from tqdm.auto import tqdm

    written = offset
    with (
        open(part, mode) as out,
        tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=name,
            disable=not progress,
        ) as bar,
    ):
        try:
            for chunk in resp.iter_content(_NET_CHUNK):
                out.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
        except (requests.RequestException, ConnectionError) as err:
            # requests' errors are OSErrors too, so they are matched before the write errors.
            out.flush()
            raise _Interrupted(f"after {written} of {total or '?'} bytes: {err}") from err
        except OSError as err:
            raise PatError(f"cannot write {part}: {err}") from err
    if total is not None and written < total:
        raise _Interrupted(f"body ended after {written} of {total} bytes")


def _content_range(value: str) -> tuple[int | None, int | None]:
    """Parse ``bytes START-END/TOTAL`` into (START, TOTAL)."""
    match = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", value.strip())
    if not match:
        return None, None
    total = None if match.group(2) == "*" else int(match.group(2))
    return int(match.group(1)), total


def _verify_local(spec: PatSpec) -> PatFile:
    split = urlsplit(spec.url)
    path = Path(unquote(split.path)) if split.scheme == "file" else Path(spec.url)
    path = path.expanduser()
    if not path.is_file():
        raise PatError(
            f"PAT {path} does not exist or is not a file; pass an existing .pat or an https URL"
        )
    size, sha256 = _measure(path)
    _check(spec, size, sha256, source=str(path))
    return PatFile(path=path, size=size, sha256=sha256, reused=True)


def _reuse_cached(spec: PatSpec, final: Path, record: dict[str, Any] | None) -> PatFile | None:
    """The cached file if it matches the spec and the record, else None (and it is removed)."""
    if not final.is_file():
        return None
    size, sha256 = _measure(final)
    try:
        _check(spec, size, sha256, source=str(final))
        if record is not None and record.get("sha256") not in (None, sha256):
            raise PatError(
                f"{final} has sha256 {sha256} but {record.get('sha256')} was recorded "
                "when it was downloaded"
            )
    except PatError as err:
        log.warning("cached PAT does not match, downloading again: %s", err)
        final.unlink()
        return None
    log.info("reusing cached PAT %s (sha256 %s)", final, sha256)
    return PatFile(path=final, size=size, sha256=sha256, reused=True)


def _check(spec: PatSpec, size: int, sha256: str, *, source: str) -> None:
    if spec.size is not None and size != spec.size:
        raise PatError(
            f"PAT from {source} has {size} bytes, params expect {spec.size}; "
            "check the size in params (the PAT may have been re-issued) or the file"
        )
    if spec.sha256 is not None and sha256 != spec.sha256.lower():
        raise PatError(
            f"PAT from {source} has sha256 {sha256}, params expect {spec.sha256.lower()}; "
            "check the sha256 in params (the PAT may have been re-issued) or the file"
        )


def _measure(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable PAT record %s: %s", path, err)
        return None
    return data if isinstance(data, dict) else None


def _write_record(path: Path, url: str, size: int, sha256: str, old: dict[str, Any] | None) -> None:
    record: dict[str, Any] = {
        "url": url,
        "size": size,
        "sha256": sha256,
        "fetched_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if old is not None and old.get("sha256") not in (None, sha256):
        # Keep the history so a re-issued PAT stays visible after the warning scrolled away.
        previous = [{k: old.get(k) for k in ("url", "size", "sha256", "fetched_at")}]
        record["previous"] = previous + list(old.get("previous", []))
    elif old is not None and old.get("fetched_at"):
        record["fetched_at"] = old["fetched_at"]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
