"""Checkpoints through an OCI registry (build parameter ``cache_repository``).

A build pushes every verified checkpoint to ``<cache_repository>:<tag>``, where the tag names
target, accelerator, checkpoint and fingerprint; a build on another machine whose engine lacks
a checkpoint with the current fingerprint pulls it from there and resumes from it instead of
booting. A pulled image counts only if its fingerprint label is the one wanted. The registry is
a cache: a failed pull means "not cached" (the build boots), a failed push is reported in the
record and the log, and neither fails the build.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import docker
import docker.errors

from vdsmlib.checkpoints.vm import CHECKPOINT_REPOSITORY
from vdsmlib.docker import labels as L
from vdsmlib.docker.registry import RegistryError, pull, push

__all__ = ["CacheTransfer", "checkpoint_tag", "pull_checkpoint", "push_checkpoint"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheTransfer:
    """One pull or push: what, how big, how long, and the error if it failed."""

    direction: str  # pull | push
    reference: str
    seconds: float
    size_bytes: int = 0
    digest: str = ""
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def checkpoint_tag(dsm_version: str, accelerator: str, name: str, fingerprint: str) -> str:
    """``<version>-<accelerator>-<checkpoint>-<fp12>``: the tag of a checkpoint image."""
    return f"{dsm_version}-{accelerator}-{name}-{fingerprint[:12]}"


def pull_checkpoint(
    client: docker.DockerClient, repository: str, tag: str, fingerprint: str
) -> CacheTransfer:
    """Pull ``repository:tag``; on success it is also tagged as a local checkpoint image."""
    ref = f"{repository}:{tag}"
    started = time.monotonic()
    try:
        image_id = pull(client, ref)
    except RegistryError as err:
        level = logging.INFO if err.kind == "not-found" else logging.WARNING
        log.log(level, "checkpoint cache: %s", err)
        return CacheTransfer("pull", ref, time.monotonic() - started, error=str(err))
    image = client.images.get(image_id)
    labels = image.labels or {}
    if labels.get(L.FINGERPRINT) != fingerprint or labels.get(L.KIND) != "checkpoint":
        client.images.remove(ref)
        message = f"{ref} is not the checkpoint wanted (fingerprint {labels.get(L.FINGERPRINT)})"
        log.warning("checkpoint cache: %s", message)
        return CacheTransfer("pull", ref, time.monotonic() - started, error=message)
    image.tag(CHECKPOINT_REPOSITORY, tag)
    size = int(image.attrs.get("Size", 0))
    seconds = time.monotonic() - started
    log.info("checkpoint cache: pulled %s (%.0f MB) in %.1f s", ref, size / 1e6, seconds)
    return CacheTransfer("pull", ref, seconds, size_bytes=size, digest=_digest(image, repository))


def push_checkpoint(client: docker.DockerClient, image_ref: str, repository: str) -> CacheTransfer:
    """Push the local checkpoint ``image_ref`` as ``repository:<its tag>``."""
    tag = image_ref.rpartition(":")[2]
    ref = f"{repository}:{tag}"
    started = time.monotonic()
    try:
        image = client.images.get(image_ref)
        image.tag(repository, tag)
        result = push(client, ref)
    except (RegistryError, docker.errors.DockerException) as err:
        log.warning("checkpoint cache: push of %s failed: %s", ref, err)
        return CacheTransfer("push", ref, time.monotonic() - started, error=str(err))
    size = int(image.attrs.get("Size", 0))
    log.info("checkpoint cache: pushed %s (%.0f MB) in %.1f s", ref, size / 1e6, result.seconds)
    return CacheTransfer("push", ref, result.seconds, size_bytes=size, digest=result.digest)


def _digest(image: Any, repository: str) -> str:
    for digest in image.attrs.get("RepoDigests") or []:
        name, _, value = str(digest).partition("@")
        if name == repository:
            return value
    return ""
