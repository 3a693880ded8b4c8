"""Fingerprints: a hash of everything that can change a stage's result.

A stage's fingerprint covers the params it reads, the bytes of the profile files and vdsmlib
modules it runs, the base image digest, the QEMU version, machine type, CPU model, accelerator,
and the fingerprint of the stage before it. It is stored as an image label; a checkpoint is reused
only when its label equals the fingerprint computed now.

Example::

    >>> fp = fingerprint({"stage": "boot", "ram": "512M"}, previous="")
    >>> len(fp)
    64
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["ROOT_FILES", "VDSMLIB_DIR", "files_digest", "fingerprint", "sources_digest"]

VDSMLIB_DIR = Path(__file__).resolve().parent.parent
#: files of the final image recipe
ROOT_FILES = (
    VDSMLIB_DIR.parent / "Dockerfile.flatten",
    VDSMLIB_DIR / "build" / "assets" / "healthcheck.sh",
    VDSMLIB_DIR / "build" / "flatten.py",
)


def fingerprint(parts: Mapping[str, Any], *, previous: str) -> str:
    """sha256 over canonical JSON of ``parts`` and the previous stage's fingerprint."""
    blob = json.dumps({"previous": previous, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def files_digest(paths: Iterable[Path]) -> str:
    """sha256 over the names and bytes of ``paths`` (folders: every file below, sorted)."""
    h = hashlib.sha256()
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            )
        else:
            files.append(path)
    for file in files:
        h.update(str(file.name).encode() + b"\0")
        h.update(file.read_bytes() if file.exists() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def sources_digest(modules: Iterable[str]) -> str:
    """Digest of vdsmlib files or subpackages, named relative to the package.

    ``"wizard"`` (a folder) or ``"build/stages.py"`` (a file). A name that names nothing is an
    error: a fingerprint must never silently stop covering code.
    """
    paths = []
    for name in modules:
        path = VDSMLIB_DIR / name
        if not path.exists():
            raise FileNotFoundError(f"fingerprint source {name!r} is not in {VDSMLIB_DIR}")
        paths.append(path)
    return files_digest(paths)
