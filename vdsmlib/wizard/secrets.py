"""Keep secret values (passwords) out of logs, messages and evidence files."""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "MASK",
    "STORAGE_STATE_NAMES",
    "forget_cookies",
    "forget_run_cookies",
    "is_secret_name",
    "mask_text",
    "private",
    "scrub_zip",
    "secret_values",
    "session_ids",
    "write_private",
]

MASK = "***"
_SECRET_NAME = re.compile(r"pass|secret|token|key|otp", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """True for value names like ``admin_password``, ``api_token``."""
    return bool(_SECRET_NAME.search(name))


def secret_values(values: Mapping[str, str]) -> list[str]:
    """The values whose names look secret, longest first (so masking never leaves a tail)."""
    found = {v for k, v in values.items() if is_secret_name(k) and v}
    return sorted(found, key=len, reverse=True)


def _forms(secret: str) -> list[str]:
    """The raw value, how it appears inside JSON (traces are JSON lines) and URL-encoded (a login
    page posts it as a form: ``passwd=S3cure%21`` or ``+`` for spaces), longest first."""
    forms = {secret, json.dumps(secret)[1:-1]}
    for encoded in (urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
        forms |= {encoded, encoded.lower(), json.dumps(encoded)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        for form in _forms(secret):
            text = text.replace(form, MASK)
    return text


def scrub_zip(path: Path, secrets: Iterable[str]) -> int:
    """Rewrite a zip (a Playwright trace) with secrets masked in its text members.

    Playwright records fill() arguments and input values in the trace in plain text; this is
    what keeps passwords out of the evidence. Binary members (images) are copied unchanged.
    Returns how many members were changed.
    """
    wanted = [s for s in secrets if s]
    if not wanted or not path.exists():
        return 0
    changed = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                dst.writestr(info, data)
                continue
            masked = mask_text(text, wanted)
            if masked != text:
                changed += 1
            dst.writestr(info, masked.encode("utf-8"))
    tmp.replace(path)
    return changed


# Session ids as they appear in run files: the ``id`` cookie (request headers, Set-Cookie,
# storage state), ``_sid=`` in URLs and form bodies, ``"sid": "..."`` in Web API answers (also
# JSON-escaped inside trace lines).
_SID_PATTERNS = (
    re.compile(r"(?<![A-Za-z0-9_])_?(?:s)?id=([A-Za-z0-9_-]{16,})"),
    re.compile(r'\\?"_?sid\\?"\s*:\s*\\?"([A-Za-z0-9_-]{16,})'),
)
_SESSION_COOKIES = ("id", "_sid", "sid")


def _sids_in_text(text: str) -> set[str]:
    found: set[str] = set()
    for pattern in _SID_PATTERNS:
        found.update(pattern.findall(text))
    try:
        data = json.loads(text)
    except ValueError:
        return found
    if isinstance(data, dict):  # a Playwright storage state
        for cookie in data.get("cookies", []) or []:
            if isinstance(cookie, dict) and cookie.get("name") in _SESSION_COOKIES:
                found.add(str(cookie.get("value", "")))
    return {s for s in found if s}


def session_ids(folder: Path) -> set[str]:
    """Every DSM session id in the text files under ``folder`` and inside its zips (traces)."""
    found: set[str] = set()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix in (".png", ".webm", ".jpeg", ".jpg"):
            continue
        if path.suffix == ".zip":
            try:
                with zipfile.ZipFile(path) as archive:
                    for info in archive.infolist():
                        try:
                            found |= _sids_in_text(archive.read(info).decode("utf-8"))
                        except UnicodeDecodeError:
                            continue
            except zipfile.BadZipFile:
                continue
            continue
        try:
            found |= _sids_in_text(path.read_text("utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
    return found


def forget_cookies(storage_state: Path) -> bool:
    """Drop the cookies from a Playwright storage state file (kept, mode 0600).

    A file that is not a storage state's JSON (cut short) is removed: it may hold part of a
    cookie. Returns True when the file held cookies (or was removed).
    """
    if not storage_state.is_file():
        return False
    private(storage_state)
    try:
        data = json.loads(storage_state.read_text())
        cookies = data.get("cookies") if isinstance(data, dict) else None
    except (ValueError, UnicodeDecodeError):
        data = cookies = None
    if not isinstance(data, dict):
        storage_state.unlink()
        return True
    if not cookies:
        return False
    data["cookies"] = []
    write_private(storage_state, json.dumps(data, indent=2))
    return True


#: the names browser storage states get in a run folder: the build's (``browser-state.json``,
#: carried across stages) and a browser session's default (``<evidence>/storage-state.json``)
STORAGE_STATE_NAMES = ("browser-state.json", "storage-state.json")


def forget_run_cookies(folder: Path) -> list[Path]:
    """Drop the cookies of every browser storage state under ``folder`` (a run folder), and
    remove what :func:`write_private` left half-written; what a run does when it ends, and
    the janitor when a run was killed. Returns the files changed or removed."""
    changed: list[Path] = []
    if not folder.is_dir():
        return changed
    for name in STORAGE_STATE_NAMES:
        for path in sorted(folder.rglob(name)):
            if forget_cookies(path):
                changed.append(path)
        for leftover in sorted(folder.rglob(f".{name}.*.tmp")):
            leftover.unlink(missing_ok=True)
            changed.append(leftover)
    return changed


def private(path: Path) -> Path:
    """Make ``path`` (if it exists) readable by its owner only; returns it."""
    if path.exists():
        os.chmod(path, 0o600)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, readable by its owner only from its first byte (a file
    written first and made private after is readable by others in between), replacing the
    file in one step; returns ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # a leftover of the same name keeps its own mode
        f.write(text)
    os.replace(tmp, path)
    return path
