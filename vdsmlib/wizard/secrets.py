"""Keep secret values (passwords) out of logs, messages and evidence files."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["MASK", "is_secret_name", "mask_text", "scrub_zip", "secret_values"]

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
    # The raw value, and how it appears inside JSON (traces are JSON lines).
    escaped = json.dumps(secret)[1:-1]
    return [secret] if escaped == secret else [secret, escaped]


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
