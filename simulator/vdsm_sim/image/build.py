"""Build (or reuse) the DSM simulator image and its local Debian base image.

No container registry is reachable where this project runs, so the base image is made
locally with ``debootstrap`` and ``docker import``; the simulator image is then built from
``Dockerfile.sim`` with the guest application (``vdsm_sim/guest``) and DSM's facts (vdsmlib's
stdlib-only files, :data:`FACTS_FILES`) baked into its initramfs.

The simulator image is tagged ``vdsm-ci/sim:<content-hash-12>`` and ``vdsm-ci/sim:latest``.
The content hash covers the Dockerfile, the container and initramfs scripts, the guest
package, the facts files, the base image id and the upstream release the container layer
follows (:data:`UPSTREAMS`: the build argument ``UPSTREAM``; the twin of the newest release is
also tagged ``vdsm-ci/sim:<release>``, ``latest`` is 7.41's), so an unchanged tree reuses the
existing image::

    import docker
    from vdsm_sim.image.build import ensure_sim_image

    image = ensure_sim_image(docker.from_env())
    print(image.ref, image.size_bytes, image.reused)
"""

from __future__ import annotations

import collections
import datetime
import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

import vdsmlib
from vdsmlib.errors import VdsmError

__all__ = [
    "BASE_IMAGE",
    "DEBIAN_MIRROR",
    "DEBIAN_SUITE",
    "FACTS_FILES",
    "GUEST_DIR",
    "IMAGE_DIR",
    "SIM_REPOSITORY",
    "UPSTREAMS",
    "SimImage",
    "SimImageError",
    "content_hash",
    "ensure_base_image",
    "ensure_sim_image",
    "find_sim_image",
]

log = logging.getLogger(__name__)

BASE_IMAGE = "vdsm-ci/debian:trixie"
"""The locally made Debian base image (debootstrap minbase + docker import)."""

SIM_REPOSITORY = "vdsm-ci/sim"
"""Repository of the simulator image; tags are the content hash and ``latest``."""

UPSTREAMS = ("7.41", "7.65")
"""The vdsm/virtual-dsm releases the simulator twins; the first is the default (``latest``)."""

DEBIAN_SUITE = "trixie"
"""The Debian release of the base: vdsm/virtual-dsm 7.41 is built ``FROM debian:trixie-slim``."""

DEBIAN_MIRROR = "http://deb.debian.org/debian"

IMAGE_DIR = Path(__file__).resolve().parent
"""Directory holding ``Dockerfile.sim`` and the scripts copied into the image."""

BASE_SCRIPT = IMAGE_DIR / "debian-base.sh"
"""Makes BASE_IMAGE (root, debootstrap); ``make deps`` runs it too, as root, when it is missing."""

GUEST_DIR = IMAGE_DIR.parent / "guest"
"""The guest web application package, copied to ``/opt/sim/guest`` in the initramfs."""

_VDSMLIB_DIR = Path(vdsmlib.__file__).resolve().parent
FACTS_FILES = {
    "__init__.py": _VDSMLIB_DIR / "__init__.py",
    "errors.py": _VDSMLIB_DIR / "errors.py",
    "dsm": _VDSMLIB_DIR / "dsm",
}
"""DSM's facts as the guest imports them (``vdsmlib.dsm``): the installed vdsmlib's own
stdlib-only files (name in package ``vdsmlib`` -> file or folder), copied into the build
context under ``facts/vdsmlib/`` and to ``/opt/sim/vdsmlib`` in the initramfs, beside the
guest package. ``tests/sim/test_guest_facts.py`` checks that they import nothing else."""

# Files of IMAGE_DIR that go into the build context (everything else is Python of this module).
_CONTEXT_PARTS = ("Dockerfile.sim", "container", "initramfs")
_SKIP_NAMES = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_LOG_TAIL_LINES = 40
# Simulator builds kept by the pruning after a build (several checkouts may share one engine).
_KEEP_BUILDS = 4
_KEEP_RECENT_SECONDS = 3600.0


def _created_epoch(image: Any) -> float:
    """When Docker says ``image`` was made (seconds since the epoch; 0 when unreadable)."""
    stamp = str(image.attrs.get("Created", ""))
    try:
        # "2026-11-30T06:55:12.123456789Z": drop the fraction (Python reads 6 digits at most)
        return datetime.datetime.fromisoformat(
            stamp.split(".")[0].rstrip("Z") + "+00:00"
        ).timestamp()
    except ValueError:
        return 0.0


_QEMU_VERSION_RE = re.compile(r"version\s+(\S+)")


class SimImageError(VdsmError):
    """Building the simulator image or its Debian base image failed."""


@dataclass(frozen=True)
class SimImage:
    """A built (or reused) simulator image.

    ``ref`` is the content-hash tag, ``seconds`` how long ``ensure_sim_image`` took,
    ``reused`` whether an existing image matched the content hash, and ``qemu_version``
    the QEMU version inside (also the image label ``vdsm-ci.qemu-version``).
    """

    ref: str
    id: str
    size_bytes: int
    seconds: float
    reused: bool
    qemu_version: str

    @classmethod
    def of(cls, image: Any, ref: str, *, started: float, reused: bool) -> SimImage:
        """The record of Docker image ``image`` tagged ``ref`` (``started``: monotonic time)."""
        labels: dict[str, str] = image.labels or {}
        return cls(
            ref=ref,
            id=str(image.id),
            size_bytes=int(image.attrs.get("Size", 0)),
            seconds=time.monotonic() - started,
            reused=reused,
            qemu_version=labels.get("vdsm-ci.qemu-version", ""),
        )


def _image_or_none(client: docker.DockerClient, ref: str) -> Any:
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.DockerException as err:
        raise SimImageError(
            f"cannot query the Docker engine for {ref}: {err}; is dockerd running?"
        ) from err


def ensure_base_image(client: docker.DockerClient, *, mirror: str = DEBIAN_MIRROR) -> str:
    """Return the id of ``vdsm-ci/debian:trixie``, making it with ``debian-base.sh`` if missing.

    Making it needs root and ``debootstrap`` (about 30 s and 150 MB of downloads, once per
    engine); ``sudo make deps`` does it ahead of time, so that an ordinary user in the
    ``docker`` group builds everything else.
    """
    existing = _image_or_none(client, BASE_IMAGE)
    if existing is not None:
        log.debug("base image %s exists (%s)", BASE_IMAGE, existing.id)
        return str(existing.id)
    if os.geteuid() != 0:
        raise SimImageError(
            f"the simulator's base image {BASE_IMAGE} is missing, and making it needs root once "
            f"(debootstrap): run `sudo make deps`, or where a registry serves Debian: `docker "
            f"pull debian:{DEBIAN_SUITE}-slim && docker tag debian:{DEBIAN_SUITE}-slim "
            f"{BASE_IMAGE}`; then build again as yourself"
        )
    started = time.monotonic()
    tail = _run_logged(["bash", str(BASE_SCRIPT), BASE_IMAGE, DEBIAN_SUITE, mirror], "debian-base")
    if tail is not None:
        raise SimImageError(f"making the base image {BASE_IMAGE} failed; last lines:\n{tail}")
    image = _image_or_none(client, BASE_IMAGE)
    if image is None:
        raise SimImageError(f"{BASE_SCRIPT.name} finished but {BASE_IMAGE} is missing")
    log.info("base image %s made in %.0f s (%s)", BASE_IMAGE, time.monotonic() - started, image.id)
    return str(image.id)


def _run_logged(argv: list[str], what: str) -> str | None:
    """Run ``argv`` streaming its output to the log; return None on success, else a log tail."""
    tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as err:
        raise SimImageError(f"cannot run {argv[0]}: {err}") from err
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            log.info("%s: %s", what, line)
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return None if code == 0 else f"(exit code {code})\n" + "\n".join(tail)


def _context_files(guest_dir: Path) -> Iterator[tuple[str, Path]]:
    """Yield (path in build context, file) for everything the simulator image is built from."""

    def walk(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
        if root.is_file():
            yield prefix, root
            return
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if any(part in _SKIP_NAMES for part in rel.parts) or path.suffix == ".pyc":
                continue
            if path.is_file():
                yield f"{prefix}/{rel.as_posix()}", path

    for part in _CONTEXT_PARTS:
        yield from walk(IMAGE_DIR / part, part)
    yield from walk(guest_dir, "guest")
    for name, path in FACTS_FILES.items():
        yield from walk(path, f"facts/vdsmlib/{name}")


def content_hash(
    base_image_id: str, guest_dir: Path = GUEST_DIR, upstream: str = UPSTREAMS[0]
) -> str:
    """Hash of everything the image is built from: Dockerfile, scripts, guest, facts, base id
    and the upstream release it follows (its build argument)."""
    digest = hashlib.sha256(base_image_id.encode())
    digest.update(b"\0upstream\0" + upstream.encode())
    for name, path in _context_files(guest_dir):
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update(b"x" if os.access(path, os.X_OK) else b"-")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _build_stream(client: docker.DockerClient, what: str, **kwargs: Any) -> str:
    """Run a ``docker build`` through the low-level API; return the image id."""
    tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
    image_id = ""
    try:
        for chunk in client.api.build(decode=True, rm=True, forcerm=True, **kwargs):
            if "stream" in chunk:
                for line in str(chunk["stream"]).splitlines():
                    if line.strip():
                        tail.append(line)
                        # Steps and the initramfs summary at INFO, the rest of apt at DEBUG.
                        important = line.startswith(("Step ", "initramfs:", "kernel "))
                        log.log(logging.INFO if important else logging.DEBUG, "%s: %s", what, line)
            if "aux" in chunk and isinstance(chunk["aux"], dict):
                image_id = str(chunk["aux"].get("ID", image_id))
            if "error" in chunk:
                tail.append(str(chunk["error"]))
                raise SimImageError(
                    f"docker build of {what} failed: {chunk['error'].strip()}\n"
                    "last build log lines:\n" + "\n".join(tail)
                )
    except docker.errors.DockerException as err:
        raise SimImageError(
            f"docker build of {what} failed: {err}\nlast build log lines:\n" + "\n".join(tail)
        ) from err
    if not image_id:
        raise SimImageError(f"docker build of {what} returned no image id:\n" + "\n".join(tail))
    return image_id


def _read_qemu_version(client: docker.DockerClient, image_id: str) -> str:
    """Run the freshly built image once to read the QEMU version it recorded at build time."""
    try:
        output = client.containers.run(
            image_id, entrypoint=["cat", "/run/qemu-version"], remove=True, network_mode="none"
        )
    except docker.errors.DockerException as err:
        raise SimImageError(f"cannot read /run/qemu-version from {image_id}: {err}") from err
    first = output.decode(errors="replace").strip().splitlines()[0] if output else ""
    match = _QEMU_VERSION_RE.search(first)
    if match is None:
        raise SimImageError(f"unexpected qemu-system-x86_64 --version output {first!r}")
    return match.group(1)


def _prepare_context(guest_dir: Path, into: Path) -> None:
    for name, path in _context_files(guest_dir):
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _check_upstream(upstream: str) -> None:
    if upstream not in UPSTREAMS:
        raise SimImageError(
            f"the simulator twins vdsm/virtual-dsm {' and '.join(UPSTREAMS)}, not {upstream!r}: "
            f"use vdsm-ci/sim:latest (7.41) or vdsm-ci/sim:{UPSTREAMS[-1]}"
        )


def find_sim_image(
    client: docker.DockerClient, *, guest_dir: Path | None = None, upstream: str = UPSTREAMS[0]
) -> SimImage | None:
    """The simulator image of the current tree if it is built, else None; makes nothing.

    What :func:`ensure_sim_image` would reuse (a no-op build check asks this first).
    """
    started = time.monotonic()
    base = _image_or_none(client, BASE_IMAGE)
    if base is None:
        return None
    _check_upstream(upstream)
    guest = (guest_dir or GUEST_DIR).resolve()
    ref = f"{SIM_REPOSITORY}:{content_hash(str(base.id), guest, upstream)[:12]}"
    existing = _image_or_none(client, ref)
    if existing is None:
        return None
    return SimImage.of(existing, ref, started=started, reused=True)


def ensure_sim_image(
    client: docker.DockerClient,
    *,
    rebuild: bool = False,
    guest_dir: Path | None = None,
    upstream: str = UPSTREAMS[0],
) -> SimImage:
    """Return the simulator image for the current tree, building it when its hash is new.

    ``rebuild=True`` builds even if the content-hash tag exists (Docker's layer cache still
    applies). ``guest_dir`` replaces ``simulator/vdsm_sim/guest`` (for tests of the image itself).
    ``upstream``: the vdsm/virtual-dsm release whose container layer the image twins.
    Also makes the Debian base image on first use (see :func:`ensure_base_image`).
    """
    started = time.monotonic()
    _check_upstream(upstream)
    guest = (guest_dir or GUEST_DIR).resolve()
    if not (guest / "__main__.py").is_file():
        raise SimImageError(
            f"the guest application {guest} has no __main__.py; the image runs "
            "`python3 -m guest` in the guest, so the package must be runnable"
        )
    base_id = ensure_base_image(client)
    digest = content_hash(base_id, guest, upstream)
    ref = f"{SIM_REPOSITORY}:{digest[:12]}"
    existing = None if rebuild else _image_or_none(client, ref)
    reused = existing is not None
    if existing is None:
        log.info("building simulator image %s", ref)
        with tempfile.TemporaryDirectory(prefix="vdsm-sim-context-") as context:
            _prepare_context(guest, Path(context))
            image_id = _build_stream(
                client,
                "Dockerfile.sim",
                path=context,
                dockerfile="Dockerfile.sim",
                buildargs={"UPSTREAM": upstream},
                labels={"org.opencontainers.image.revision": digest},
            )
        qemu_version = _read_qemu_version(client, image_id)
        # A label cannot be computed inside a Dockerfile, so a one-line build adds it.
        labelled = _build_stream(
            client,
            "qemu-version label",
            fileobj=io.BytesIO(
                f'FROM {image_id}\nLABEL vdsm-ci.qemu-version="{qemu_version}"\n'.encode()
            ),
            tag=ref,
        )
        existing = _image_or_none(client, labelled)
        if existing is None:
            raise SimImageError(f"built {ref} ({labelled}) but the engine does not list it")
        _prune_old_builds(client, keep=ref)
    else:
        log.debug("reusing simulator image %s (%s)", ref, existing.id)  # the line below says so
    _tag_latest(existing, "latest" if upstream == UPSTREAMS[0] else upstream)
    result = SimImage.of(existing, ref, started=started, reused=reused)
    log.info(
        "simulator image %s: %.0f MB, %s in %.1f s",
        ref,
        result.size_bytes / 1e6,
        "reused" if reused else "built",
        result.seconds,
    )
    return result


def _tag_latest(image: Any, tag: str = "latest") -> None:
    try:
        image.tag(SIM_REPOSITORY, tag)
    except docker.errors.DockerException as err:
        raise SimImageError(f"cannot tag {image.id} as {SIM_REPOSITORY}:{tag}: {err}") from err


def _prune_old_builds(client: docker.DockerClient, *, keep: str) -> None:
    """Untag simulator images of older trees and drop stale initramfs-stage images.

    Without this every edit of the guest would leave a tagged image and an untagged
    builder-stage image behind. The newest few builds stay, and every build of the last hour:
    other checkouts of the project that share the Docker engine may be using them. Images
    still used by containers or as parents stay too.
    """
    try:
        stages = client.images.list(
            filters={"label": "vdsm-ci.sim-stage=initramfs", "dangling": True}
        )
        builds = client.images.list(name=SIM_REPOSITORY)
    except docker.errors.DockerException as err:
        log.warning("could not list old simulator images to prune: %s", err)
        return

    def created(image: Any) -> str:
        return str(image.attrs.get("Created", ""))

    builds.sort(key=created, reverse=True)
    # Builds of the last hour stay too: parallel checkouts each build their own, and one
    # checkout's prune must not pull another's image from under a build in progress.
    recent = time.time() - _KEEP_RECENT_SECONDS
    old_tags = [
        tag
        for image in builds[_KEEP_BUILDS:]
        if _created_epoch(image) < recent
        for tag in image.tags
        if tag
        not in (keep, f"{SIM_REPOSITORY}:latest", *(f"{SIM_REPOSITORY}:{u}" for u in UPSTREAMS))
    ]
    # The newest stage images carry the layer cache of the next builds; keep them.
    stages.sort(key=created, reverse=True)
    for target in old_tags + [image.id for image in stages[_KEEP_BUILDS:]]:
        try:
            client.images.remove(target)
            log.info("pruned old simulator build %s", target)
        except docker.errors.APIError as err:
            log.debug("kept %s: %s", target, err)
