"""Checkpoints through an OCI registry (build parameter ``cache_repository``).

A build pushes every verified checkpoint to ``<cache_repository>:<tag>``, where the tag names
target, accelerator, checkpoint and fingerprint; a build on another machine whose engine lacks
a checkpoint with the current fingerprint pulls it from there and resumes from it instead of
booting. The registry is a cache: a failed pull means "not cached" (the build boots), a failed
push is reported in the record and the log, and neither fails the build.

Labels are no proof (``docker commit`` and ``FROM`` copy them), so beside each checkpoint the
push leaves a record, ``<cache_repository>:<tag>.record``: a tiny image ``FROM scratch`` whose
``record.json`` (also its label) names the digest of the checkpoint's manifest as pushed, its
image ID, stage, fingerprint and run. A pulled checkpoint is accepted only when its fingerprint
label is the one wanted and its image ID and digest are the record's; otherwise it is removed
and refused with one line (no record: something else pushed it; another digest: the tag was
overwritten), and the build goes on without it.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import docker
import docker.errors

from vdsmlib.checkpoints.vm import CHECKPOINT_REPOSITORY
from vdsmlib.docker import labels as L
from vdsmlib.docker.registry import RegistryError, pull, push

__all__ = [
    "RECORD_LABEL",
    "CacheTransfer",
    "checkpoint_tag",
    "judge_pull",
    "pull_checkpoint",
    "push_checkpoint",
    "push_record",
    "read_record",
    "record_tag",
    "repo_digests",
]

log = logging.getLogger(__name__)

#: the label of a checkpoint's record image: the JSON of its ``record.json``
RECORD_LABEL = "vdsm-ci.checkpoint-record"


@dataclass(frozen=True)
class CacheTransfer:
    """One pull or push: what, how big, how long, and the error if it failed."""

    direction: str  # pull | push
    reference: str
    seconds: float
    size_bytes: int = 0
    digest: str = ""
    error: str = ""
    #: the record beside the checkpoint: ``repository@digest`` pushed, or the reference read
    record: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def checkpoint_tag(dsm_version: str, accelerator: str, name: str, fingerprint: str) -> str:
    """``<version>-<accelerator>-<checkpoint>-<fp12>``: the tag of a checkpoint image."""
    return f"{dsm_version}-{accelerator}-{name}-{fingerprint[:12]}"


def record_tag(tag: str) -> str:
    """The tag of the record pushed beside the checkpoint tagged ``tag``."""
    return f"{tag}.record"


def judge_pull(
    ref: str,
    image_id: str,
    digests: Sequence[str],
    record: Mapping[str, Any] | None,
    record_ref: str,
) -> str:
    """Whether the image pulled as ``ref`` is the checkpoint its build pushed: ``""`` if so,
    else the one-line reason. ``digests``: the pulled image's digests in the repository (its
    RepoDigests); ``record``: what the record beside it says, None when there is none."""
    if record is None:
        return (
            f"{ref} refused: no record {record_ref} beside it in the registry, so no build "
            "of this project pushed it (something else did); not used"
        )
    want = str(record.get("digest", ""))
    if not want or want not in digests or str(record.get("image_id", "")) != image_id:
        got = ", ".join(digests) or "none"
        return (
            f"{ref} refused: its digest ({got}) is not {want or 'none'}, the one its build "
            f"pushed ({record_ref}): the tag was overwritten; not used"
        )
    return ""


def pull_checkpoint(
    client: docker.DockerClient, repository: str, tag: str, fingerprint: str
) -> CacheTransfer:
    """Pull ``repository:tag`` and accept it only as the record beside it says (the pulled
    image is removed otherwise); on success it is also tagged as a local checkpoint image."""
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
        _remove_quietly(client, ref)
        message = f"{ref} is not the checkpoint wanted (fingerprint {labels.get(L.FINGERPRINT)})"
        log.warning("checkpoint cache: %s", message)
        return CacheTransfer("pull", ref, time.monotonic() - started, error=message)
    record_ref = f"{repository}:{record_tag(tag)}"
    try:
        record = read_record(client, record_ref)
        message = judge_pull(
            ref, str(image.id), repo_digests(image, repository), record, record_ref
        )
    except (RegistryError, docker.errors.DockerException, ValueError) as err:
        message = f"{ref} refused: its record {record_ref} could not be read ({err}); not used"
    if message:
        _remove_quietly(client, ref)
        log.warning("checkpoint cache: %s", message)
        return CacheTransfer(
            "pull", ref, time.monotonic() - started, error=message, record=record_ref
        )
    image.tag(CHECKPOINT_REPOSITORY, tag)
    size = int(image.attrs.get("Size", 0))
    seconds = time.monotonic() - started
    log.info("checkpoint cache: pulled %s (%.0f MB) in %.1f s", ref, size / 1e6, seconds)
    digest = (record or {}).get("digest", "")
    return CacheTransfer(
        "pull", ref, seconds, size_bytes=size, digest=str(digest), record=record_ref
    )


def push_checkpoint(client: docker.DockerClient, image_ref: str, repository: str) -> CacheTransfer:
    """Push the local checkpoint ``image_ref`` as ``repository:<its tag>``, then its record
    beside it (``<tag>.record``); a failed record push is the transfer's error."""
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
    record_ref = f"{repository}:{record_tag(tag)}"
    labels = image.labels or {}
    record = {
        "reference": ref,
        "digest": result.digest,
        "image_id": str(image.id),
        "stage": labels.get(L.STAGE, ""),
        "fingerprint": labels.get(L.FINGERPRINT, ""),
        "run_id": labels.get(L.RUN_ID, ""),
    }
    error = ""
    try:
        pushed = push_record(client, record_ref, record)
        record_ref = pushed.reference
    except (RegistryError, docker.errors.DockerException) as err:
        error = f"{ref} pushed, but not its record {record_ref} (pulls will refuse it): {err}"
        log.warning("checkpoint cache: %s", error)
    seconds = time.monotonic() - started
    return CacheTransfer(
        "push", ref, seconds, size_bytes=size, digest=result.digest, error=error, record=record_ref
    )


def repo_digests(image: Any, repository: str) -> list[str]:
    """The image's manifest digests in ``repository`` (its RepoDigests there)."""
    found = []
    for digest in image.attrs.get("RepoDigests") or []:
        name, _, value = str(digest).partition("@")
        if name == repository:
            found.append(value)
    return found


def push_record(client: docker.DockerClient, ref: str, record: Mapping[str, Any]) -> Any:
    """Build the record image ``ref`` (FROM scratch, one ``record.json``), push it, remove it.
    The same record is pushed beside a published final image (:mod:`vdsmlib.pipeline.publish`)."""
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (
            ("Dockerfile", b"FROM scratch\nCOPY record.json /record.json\n"),
            ("record.json", text.encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    labels = {RECORD_LABEL: json.dumps(record, sort_keys=True), L.KIND: "checkpoint-record"}
    client.images.build(
        fileobj=context, custom_context=True, tag=ref, labels=labels, rm=True, forcerm=True
    )
    try:
        return push(client, ref)
    finally:
        _remove_quietly(client, ref)


def read_record(client: docker.DockerClient, ref: str) -> dict[str, Any] | None:
    """What the record ``ref`` says; None when the registry has no such record."""
    try:
        image_id = pull(client, ref)
    except RegistryError as err:
        if err.kind == "not-found":
            return None
        raise
    try:
        text = (client.images.get(image_id).labels or {}).get(RECORD_LABEL)
    finally:
        _remove_quietly(client, ref)
    data = json.loads(text or "null")
    if not isinstance(data, dict):
        raise ValueError(f"{ref} holds no checkpoint record")
    return data


def _remove_quietly(client: docker.DockerClient, ref: str) -> None:
    try:
        client.images.remove(ref)
    except docker.errors.DockerException as err:
        log.debug("checkpoint cache: could not remove %s: %s", ref, err)
