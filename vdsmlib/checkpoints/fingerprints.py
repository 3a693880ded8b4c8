"""Fingerprints: a hash of everything that can change a checkpoint.

A checkpoint holds the work of every stage before it, so its fingerprint covers the params those
stages read, the bytes of their wizard profiles, the base image, QEMU version, machine type,
CPU model and accelerator, the fingerprint of the checkpoint before it, and the code they run:
the **import closure** of the stage's own module (:data:`STAGE_CODE`), read from the source
(every ``import`` statement, also inside functions), so a module the stage code starts to import
is covered without a list being edited (a package's ``__init__`` counts where a name is
imported from it, not where one of its modules is). Files are named by their path in the
package, so a move or rename changes the fingerprint too. The fingerprint is stored as an image
label; a checkpoint is reused only when its label equals the fingerprint computed now.

Example::

    >>> fp = fingerprint({"stage": "boot", "ram": "512M"}, previous="")
    >>> len(fp)
    64
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from vdsmlib.params import Params
from vdsmlib.project import project_dir
from vdsmlib.wizard import profile_files

__all__ = [
    "STAGE_CODE",
    "VDSMLIB_DIR",
    "BaseFacts",
    "compute",
    "files_digest",
    "fingerprint",
    "import_closure",
    "imported_modules",
    "sources_digest",
]

#: the installed (or checked-out) vdsmlib package
VDSMLIB_DIR = Path(__file__).resolve().parent.parent

#: the modules whose code makes each checkpoint; their import closure is what the fingerprint
#: covers (``start-ready``: prepare and boot; ``final``: admin, post-wizard, services; the
#: final image: flatten), besides the files that are not Python (the image's health check).
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "start-ready": ("vdsmlib.pipeline.boot",),
    "final": ("vdsmlib.pipeline.configure",),
    "image": ("vdsmlib.pipeline.flatten",),
}
#: files the flatten stage copies into the final image (relative to the package)
IMAGE_ASSETS = (
    "pipeline/assets/healthcheck.sh",
    "pipeline/assets/restore-check.sh",
    "pipeline/assets/restore-entry.sh",
)
IMAGE_PROJECT_FILES = ("Dockerfile.flatten",)


class BaseFacts(Protocol):
    """What prepare found (:class:`vdsmlib.pipeline.base.PreparedBase`) that fingerprints read."""

    base_id: str
    qemu_version: str
    accelerator: str
    prepare_fingerprint: str
    pat_sha256: str | None


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


def _module_file(module: str, package_dir: Path) -> Path | None:
    """The file of ``vdsmlib.a.b`` under ``package_dir`` (a module or a package's
    ``__init__.py``), or None when it names no file (an attribute, not a module)."""
    parts = module.split(".")[1:]
    base = package_dir.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if parts and candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, module: str, package_dir: Path) -> frozenset[str]:
    """Every module that ``path`` (the module ``module``) imports, absolute or relative, at any
    depth (also inside functions and under ``TYPE_CHECKING``), by its dotted name.

    ``from vdsmlib.services import dataplane`` names the module ``vdsmlib.services.dataplane``,
    not the package's ``__init__`` (which only re-exports); ``from vdsmlib.wizard import
    BrowserSession`` names ``vdsmlib.wizard``, and through it what that imports.
    ``package_dir`` is where the package's modules are looked up. ``tools/import_graph.py``
    reads the package's import graph with this too.
    """
    return _imports_of(path.read_text(), module, path.name == "__init__.py", package_dir)


@functools.lru_cache(maxsize=4096)
def _imports_of(source: str, module: str, is_package: bool, package_dir: Path) -> frozenset[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.add(name if _module_file(name, package_dir) else base)
    return frozenset(found)


def import_closure(roots: Iterable[str], *, package_dir: Path = VDSMLIB_DIR) -> list[Path]:
    """The files of ``roots`` (dotted ``vdsmlib`` modules) and of every module they import,
    transitively, sorted. A root that names no file is an error: a fingerprint must never
    silently stop covering code."""
    seen: dict[str, Path] = {}
    todo = list(roots)
    for root in todo:
        if _module_file(root, package_dir) is None:
            raise FileNotFoundError(f"stage code {root!r} is not a module in {package_dir}")
    while todo:
        module = todo.pop()
        path = _module_file(module, package_dir)
        if path is None or module in seen:
            continue
        seen[module] = path
        package = package_dir.name
        todo.extend(
            name
            for name in imported_modules(path, module, package_dir)
            if name not in seen and (name == package or name.startswith(package + "."))
        )
    return sorted(set(seen.values()))


def sources_digest(
    roots: Iterable[str], *, package_dir: Path = VDSMLIB_DIR, extra: Iterable[str] = ()
) -> str:
    """Digest of the import closure of ``roots`` and the ``extra`` files (relative to the
    package), each named by its path in the package."""
    files = [*import_closure(roots, package_dir=package_dir)]
    files += [package_dir / name for name in extra]
    h = hashlib.sha256()
    for file in sorted(set(files)):
        h.update(file.relative_to(package_dir.parent).as_posix().encode() + b"\0")
        h.update(file.read_bytes() if file.exists() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def compute(
    params: Params,
    base: BaseFacts,
    *,
    package_dir: Path = VDSMLIB_DIR,
    project: Path | None = None,
) -> dict[str, str]:
    """Fingerprints of the checkpoints (``start-ready``, ``final``) and the final image.

    ``package_dir`` and ``project`` (default: :func:`vdsmlib.project.project_dir`) say where
    the code and the project files are read from.
    """
    project = project or project_dir()
    boot = fingerprint(
        {
            "base_id": base.base_id,
            "qemu_version": base.qemu_version,
            "accelerator": base.accelerator,
            "vm": params.vm.model_dump(exclude={"accelerator"}),
            "env": params.env,
            "run": params.run.model_dump(),
            "disk_base": params.base.disk_base,
            "pat_sha256": base.pat_sha256,
            "profile": files_digest(
                profile_files(params.profile, "boot", search=params.profile_dirs)
            ),
            "sources": sources_digest(STAGE_CODE["start-ready"], package_dir=package_dir),
        },
        previous=base.prepare_fingerprint,
    )
    stages = ["admin", "post-wizard"] + (["services-ui"] if params.nfs_via == "ui" else [])
    final = fingerprint(
        {
            "admin": {
                "server_name": params.admin.server_name,
                "user": params.admin.user,
                "password_sha256": hashlib.sha256(params.admin.password.encode()).hexdigest(),
            },
            "services": params.services.model_dump(mode="json"),
            "nfs_via": params.nfs_via,
            "profiles": {
                s: files_digest(profile_files(params.profile, s, search=params.profile_dirs))
                for s in stages
            },
            "sources": sources_digest(STAGE_CODE["final"], package_dir=package_dir),
        },
        previous=boot,
    )
    image = fingerprint(
        {
            "flatten": sources_digest(
                STAGE_CODE["image"], package_dir=package_dir, extra=IMAGE_ASSETS
            ),
            "project_files": files_digest(project / name for name in IMAGE_PROJECT_FILES),
            "guest_address": params.base.guest_address,
            # the health check's login wait goes into the image (health.conf)
            "health_timeout": params.timeouts.for_accelerator(base.accelerator).health,
            "repository": params.image.repository,
            "dsm_release": params.dsm_release,
        },
        previous=final,
    )
    return {"start-ready": boot, "final": final, "image": image}
