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

__all__ = ["VDSMLIB_DIR", "files_digest", "fingerprint", "source_files", "sources_digest"]

#: the installed (or checked-out) vdsmlib package
VDSMLIB_DIR = Path(__file__).resolve().parent.parent


def fingerprint(parts: Mapping[str, Any], *, previous: str) -> str:
    """sha256 over canonical JSON of ``parts`` and the previous stage's fingerprint."""
    blob = json.dumps({"previous": previous, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _walk(path: Path) -> list[tuple[str, Path]]:
    """``(name, file)`` pairs: a file is named by its name, a folder's files by their path
    below the folder's name (``wizard/engine.py``), so a move or rename changes the digest."""
    if not path.is_dir():
        return [(path.name, path)]
    return [
        (p.relative_to(path.parent).as_posix(), p)
        for p in sorted(path.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]


def files_digest(paths: Iterable[Path]) -> str:
    """sha256 over the names and bytes of ``paths`` (folders: every file below, sorted)."""
    h = hashlib.sha256()
    for path in paths:
        for name, file in _walk(path):
            h.update(name.encode() + b"\0")
            h.update(file.read_bytes() if file.exists() else b"<missing>")
            h.update(b"\0")
    return h.hexdigest()


def source_files(modules: Iterable[str], *, package_dir: Path = VDSMLIB_DIR) -> list[Path]:
    """The files of vdsmlib files or subpackages named relative to the package.

    ``"wizard"`` (a folder) or ``"build/stages.py"`` (a file). A name that names nothing is an
    error: a fingerprint must never silently stop covering code.
    """
    paths = []
    for name in modules:
        path = package_dir / name
        if not path.exists():
            raise FileNotFoundError(f"fingerprint source {name!r} is not in {package_dir}")
        paths.append(path)
    return paths


def sources_digest(modules: Iterable[str], *, package_dir: Path = VDSMLIB_DIR) -> str:
    """Digest of vdsmlib files or subpackages (see :func:`source_files`)."""
    return files_digest(source_files(modules, package_dir=package_dir))
