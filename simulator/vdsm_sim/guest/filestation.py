"""File Station on the simulated DSM, over the same ``/volume1`` that SMB and NFS serve.

The request forms and answers of Synology's File Station API guide (DSM 6/7): ``SYNO.FileStation``
``List`` (``list_share``, ``list``, ``getinfo``), ``CreateFolder``, ``Upload`` (multipart, the file
last, streamed to disk), ``Download`` (one file), ``Delete``, ``Rename``, ``CopyMove``, ``DirSize``
and ``MD5`` (background tasks: ``start``, ``status``, ``stop``). Paths are DSM's: ``/<shared
folder>/...``; several paths come as a JSON list or comma-separated. See FACTS.md, "File Station".

The handlers are registered into :data:`webapi.CATALOG` by :mod:`.webapi` itself.
"""

from __future__ import annotations

import errno
import fnmatch
import grp
import hashlib
import io
import os
import pwd
import secrets
import shutil
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from .facts import errors as codes
from .state import VOLUME_PATH, Share, SimState

__all__ = ["UPLOAD_DIR_NAME", "ChunkedReader", "UploadError", "receive_multipart"]

#: Where uploads stream to before they land (on the volume, outside every shared folder).
UPLOAD_DIR_NAME = "@sim_upload"
_CHUNK = 1 << 16
_SORT_KEYS = ("name", "size", "user", "group", "mtime", "atime", "ctime", "crtime", "posix", "type")


class UploadError(Exception):
    """A multipart body that cannot be read; ``code`` is File Station's."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# -- paths ------------------------------------------------------------------------------------


def volume_root(state: SimState) -> Path:
    return Path(state.scenario.volume_root)


def _share_of(state: SimState, name: str) -> Share | None:
    with state.lock:
        for share in state.shares.values():
            if share.name.lower() == name.lower():
                return share
    return None


def resolve(state: SimState, dsm_path: str, fail: Callable[[int], Exception]) -> Path:
    """The file behind ``/share/rest``; 408 for an unknown share, 418 for one leaving it."""
    parts = [p for p in dsm_path.strip().split("/") if p]
    if not dsm_path.startswith("/") or not parts:
        raise fail(codes.FS_INVALID_PARAMETER)
    if any(p in (".", "..") for p in parts):
        raise fail(codes.FS_ILLEGAL_NAME)
    share = _share_of(state, parts[0])
    if share is None:
        raise fail(codes.FS_NO_SUCH_FILE)
    base = volume_root(state) / share.name
    base.mkdir(parents=True, exist_ok=True)  # the data plane makes it too, in the guest
    return base.joinpath(*parts[1:])


def dsm_path_of(state: SimState, real: Path) -> str:
    rel = real.relative_to(volume_root(state))
    return "/" + rel.as_posix()


def _real_path(state: SimState, real: Path) -> str:
    """DSM's ``real_path``: under /volume1 whatever the simulator's root."""
    return VOLUME_PATH + dsm_path_of(state, real)


# -- entries ----------------------------------------------------------------------------------


def _name_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_of(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _acl(st: os.stat_result) -> dict[str, bool]:
    writable = bool(st.st_mode & stat.S_IWUSR)
    return {
        "append": writable,
        "del": writable,
        "exec": bool(st.st_mode & stat.S_IXUSR),
        "read": True,
        "write": writable,
    }


def entry(
    state: SimState, real: Path, additional: list[str], *, share: bool = False
) -> dict[str, Any]:
    """One file or folder as File Station lists it, with the ``additional`` asked for."""
    st = real.stat()
    isdir = stat.S_ISDIR(st.st_mode)
    out: dict[str, Any] = {"isdir": isdir, "name": real.name, "path": dsm_path_of(state, real)}
    if not additional:
        return out
    extra: dict[str, Any] = {}
    if "real_path" in additional:
        extra["real_path"] = _real_path(state, real)
    if "size" in additional:
        extra["size"] = 0 if isdir else st.st_size
    if "owner" in additional:
        extra["owner"] = {
            "user": _name_of(st.st_uid),
            "group": _group_of(st.st_gid),
            "uid": st.st_uid,
            "gid": st.st_gid,
        }
    if "time" in additional:
        extra["time"] = {
            "atime": int(st.st_atime),
            "mtime": int(st.st_mtime),
            "ctime": int(st.st_ctime),
            "crtime": int(getattr(st, "st_birthtime", st.st_ctime)),
        }
    if "perm" in additional:
        perm: dict[str, Any] = {
            "posix": int(oct(st.st_mode & 0o777)[2:]),
            "is_acl_mode": False,
            "acl": _acl(st),
        }
        if share:
            perm.update(
                acl_enable=False,
                adv_right={
                    "disable_download": False,
                    "disable_list": False,
                    "disable_modify": False,
                },
                is_share_readonly=False,
                share_right="RW",
            )
        extra["perm"] = perm
    if "type" in additional:
        extra["type"] = "" if isdir else real.suffix.lstrip(".").upper()
    if "mount_point_type" in additional:
        extra["mount_point_type"] = ""
    if share and "sync_share" in additional:
        extra["sync_share"] = False
    if share and "volume_status" in additional:
        usage = shutil.disk_usage(real)
        extra["volume_status"] = {
            "freespace": usage.free,
            "totalspace": usage.total,
            "readonly": False,
        }
    out["additional"] = extra
    return out


def sort_entries(entries: list[dict[str, Any]], by: str, direction: str) -> list[dict[str, Any]]:
    """DSM's ``sort_by``/``sort_direction``: folders first, then by the key."""

    def key(e: dict[str, Any]) -> Any:
        add = e.get("additional", {})
        value: Any
        if by == "size":
            value = add.get("size", 0)
        elif by in ("user", "group"):
            value = add.get("owner", {}).get(by, "")
        elif by in ("mtime", "atime", "ctime", "crtime"):
            value = add.get("time", {}).get(by, 0)
        elif by == "posix":
            value = add.get("perm", {}).get("posix", 0)
        elif by == "type":
            value = add.get("type", "")
        else:
            value = e["name"].lower()
        return value

    ordered = sorted(entries, key=key, reverse=direction == "desc")
    return sorted(ordered, key=lambda e: not e["isdir"])


def matches(name: str, patterns: list[str]) -> bool:
    """``pattern``: glob patterns, comma-separated, case-insensitive; a bare word matches names
    containing it."""
    if not patterns:
        return True
    low = name.lower()
    for pattern in patterns:
        p = pattern.lower()
        if any(c in p for c in "*?[") and fnmatch.fnmatchcase(low, p):
            return True
        if not any(c in p for c in "*?[") and p in low:
            return True
    return False


# -- background tasks -------------------------------------------------------------------------


@dataclass
class Task:
    """A File Station background task; ``result`` is what ``status`` answers."""

    kind: str
    result: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    error: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)


_tasks: dict[str, Task] = {}
_tasks_lock = threading.Lock()


def start_task(kind: str, work: Callable[[Task], None]) -> str:
    """Run ``work(task)`` on a thread; the task id as DSM writes them."""
    taskid = f"FileStation_{secrets.token_hex(8)}"
    task = Task(kind=kind)
    with _tasks_lock:
        _tasks[taskid] = task

    def run() -> None:
        try:
            work(task)
        except OSError as err:
            task.error = codes.FS_NO_SPACE if err.errno == errno.ENOSPC else codes.FS_UNKNOWN
        finally:
            task.finished = True

    threading.Thread(target=run, name=taskid, daemon=True).start()
    return taskid


def get_task(taskid: str, kind: str) -> Task | None:
    with _tasks_lock:
        task = _tasks.get(taskid.strip('"'))
    return task if task is not None and task.kind == kind else None


def drop_task(taskid: str) -> None:
    with _tasks_lock:
        task = _tasks.pop(taskid.strip('"'), None)
    if task is not None:
        task.cancel.set()


def dir_size(task: Task, paths: list[Path]) -> None:
    num_dir = num_file = total = 0
    task.result = {"num_dir": 0, "num_file": 0, "total_size": 0}
    for top in paths:
        if top.is_dir():
            num_dir += 1
            for root, dirs, files in os.walk(top):
                if task.cancel.is_set():
                    return
                num_dir += len(dirs)
                for name in files:
                    num_file += 1
                    total += (Path(root) / name).stat().st_size
        else:
            num_file += 1
            total += top.stat().st_size
        task.result = {"num_dir": num_dir, "num_file": num_file, "total_size": total}


def md5(task: Task, path: Path) -> None:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            if task.cancel.is_set():
                return
            digest.update(chunk)
    task.result = {"md5": digest.hexdigest()}


# -- multipart upload -------------------------------------------------------------------------


def receive_multipart(
    rfile: BinaryIO | io.BufferedIOBase | ChunkedReader,
    length: int,
    content_type: str,
    tmp_dir: Path,
) -> tuple[dict[str, str], Path | None, str]:
    """Read a ``multipart/form-data`` body of ``length`` bytes in 64 KiB chunks: the form fields,
    and the file part streamed to a file in ``tmp_dir`` (memory stays flat whatever its size).

    Returns (fields, the file's temporary path or None, the file's name). Raises
    :class:`UploadError` (1800) on a body that ends early or has no boundary.
    """
    boundary = ""
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary or length <= 0:
        raise UploadError(codes.FS_UPLOAD_INCOMPLETE)
    delim = b"\r\n--" + boundary.encode()
    buf = b"\r\n"
    remaining = length
    fields: dict[str, str] = {}
    file_path: Path | None = None
    file_name = ""

    def fill() -> bool:
        nonlocal buf, remaining
        if remaining <= 0:
            return False
        chunk = rfile.read(min(_CHUNK, remaining))
        if not chunk:
            return False
        remaining -= len(chunk)
        buf += chunk
        return True

    def need(n: int) -> None:
        while len(buf) < n:
            if not fill():
                raise UploadError(codes.FS_UPLOAD_INCOMPLETE)

    # the preamble up to the first delimiter
    while (idx := buf.find(delim)) < 0:
        buf = buf[-len(delim) :]
        if not fill():
            raise UploadError(codes.FS_UPLOAD_INCOMPLETE)
    buf = buf[idx + len(delim) :]
    try:
        while True:
            need(2)
            if buf[:2] == b"--":
                break  # the closing delimiter
            while (end := buf.find(b"\r\n\r\n")) < 0:
                if len(buf) > 16384 or not fill():
                    raise UploadError(codes.FS_UPLOAD_INCOMPLETE)
            headers = buf[2:end].decode("utf-8", "replace")
            buf = buf[end + 4 :]
            name, filename = _disposition(headers)
            out: IO[bytes] | _Field
            if filename is not None:
                tmp_dir.mkdir(parents=True, exist_ok=True)
                file_path = tmp_dir / f"upload-{secrets.token_hex(8)}"
                file_name = filename
                out = file_path.open("wb")
            else:
                out = _Field()
            with out:
                while (idx := buf.find(delim)) < 0:
                    keep = len(delim) - 1
                    if len(buf) > keep:
                        out.write(buf[:-keep])
                        buf = buf[-keep:]
                    if not fill():
                        raise UploadError(codes.FS_UPLOAD_INCOMPLETE)
                out.write(buf[:idx])
                buf = buf[idx + len(delim) :]
                if isinstance(out, _Field) and name:
                    fields[name] = out.getvalue().decode("utf-8", "replace")
        while fill():  # the epilogue
            buf = b""
    except BaseException:
        if file_path is not None:
            file_path.unlink(missing_ok=True)
        raise
    return fields, file_path, file_name


class ChunkedReader:
    """The body of a ``Transfer-Encoding: chunked`` request as plain bytes (``read(n)``; b""
    at its end), as clients that stream an upload of unknown size send it (aiohttp's
    MultipartWriter with an async source: py-synologydsm-api ``upload_file``)."""

    def __init__(self, raw: BinaryIO | io.BufferedIOBase) -> None:
        self._raw = raw
        self._left = 0
        self._done = False

    def read(self, n: int) -> bytes:
        if self._done:
            return b""
        if self._left == 0:
            line = self._raw.readline(1024).strip()
            size_text = line.split(b";", 1)[0]
            try:
                self._left = int(size_text, 16)
            except ValueError:
                raise UploadError(codes.FS_UPLOAD_INCOMPLETE) from None
            if self._left == 0:
                while self._raw.readline(1024).strip():  # trailers
                    pass
                self._done = True
                return b""
        data = self._raw.read(min(n, self._left))
        if not data:
            raise UploadError(codes.FS_UPLOAD_INCOMPLETE)
        self._left -= len(data)
        if self._left == 0:
            self._raw.readline(16)  # the chunk's CRLF
        return data


class _Field:
    """A small in-memory part (a form field), refused past 1 MiB."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> int:
        self._size += len(data)
        if self._size > 1 << 20:
            raise UploadError(codes.FS_INVALID_PARAMETER)
        self._parts.append(data)
        return len(data)

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def __enter__(self) -> _Field:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _disposition(headers: str) -> tuple[str, str | None]:
    """(name, filename or None) of a part's Content-Disposition."""
    name = ""
    filename: str | None = None
    for line in headers.split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() != "content-disposition":
            continue
        for item in value.split(";")[1:]:
            k, _, v = item.strip().partition("=")
            v = v.strip().strip('"')
            if k.lower() == "name":
                name = v
            elif k.lower() == "filename":
                filename = os.path.basename(v.replace("\\", "/"))
    return name, filename
