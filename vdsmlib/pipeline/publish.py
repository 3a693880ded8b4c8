"""Publish a final image: push its tags to a registry repository and record the digest.

The image is the one the last build of the target produced (``out/latest/result.json``), or
the newest local final image of the target; either way one whose smoke test passed (by image
ID, :mod:`vdsmlib.pipeline.trust`): a copy that carries the final image's labels is refused.
Each of its tags is pushed under the new repository with the same tag name, and beside each
the checkpoint cache's record (``<tag>.record``, :func:`vdsmlib.checkpoints.cache.push_record`:
digest, image ID, fingerprint, and the run and tags of the smoke test that passed it); the
digest is printed and written to the run's record and to the image's smoke-test record.

Trust travels with the record: a final image pulled from a registry onto an engine whose user
has no smoke record of it is trusted (:func:`trust_pulled`, which writes that record) when the
record beside its tag names its digest and image ID; otherwise it is not, with one line why::

    from vdsmlib.pipeline.publish import publish
    from vdsmlib.docker.engine import connect

    result = publish(connect(), "sim", "registry.example.com/ci/dsm")
    print(result.reference)  # registry.example.com/ci/dsm@sha256:...
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from vdsmlib.checkpoints.cache import judge_pull, push_record, read_record, record_tag, repo_digests
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images, get_image
from vdsmlib.docker.registry import PushResult, RegistryError, push, split_reference
from vdsmlib.errors import VdsmError
from vdsmlib.pipeline.trust import (
    SmokePassed,
    record_digest,
    record_smoke_passed,
    smoke_passed,
    trust_folder,
)

__all__ = ["PublishError", "PublishResult", "find_final_image", "publish", "trust_pulled"]

log = logging.getLogger(__name__)


class PublishError(VdsmError):
    """There is nothing to publish, or the repository name is not usable."""


@dataclass
class PublishResult:
    image_id: str
    repository: str
    digest: str
    pushed: list[PushResult] = field(default_factory=list)
    record: str | None = None
    #: the records pushed beside the tags (``repository@digest`` of each)
    records: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass(frozen=True)
class FinalImage:
    image_id: str
    tags: list[str]
    record: Path | None


def _check_repository(repository: str) -> None:
    name, tag = split_reference(repository)
    if tag != "latest" or "@" in repository or not name or name != name.strip():
        raise PublishError(
            f"--repository {repository!r}: give a repository without tag or digest "
            "(REGISTRY/NAMESPACE/NAME, e.g. ghcr.io/acme/dsm)"
        )
    if any(c.isupper() for c in name.split("/", 1)[-1]) or " " in name:
        raise PublishError(f"--repository {repository!r}: repository names are lowercase")


def find_final_image(client: docker.DockerClient, target: str, record: Path | None) -> FinalImage:
    """The image the last build of ``target`` produced, else the newest local final image."""
    if record is not None and record.exists():
        data: dict[str, Any] = json.loads(record.read_text())
        if data.get("target") == target and data.get("image_id") and data.get("tags"):
            image = get_image(client, str(data["image_id"]))
            if image is not None:
                return FinalImage(str(image.id), [str(t) for t in data["tags"]], record.resolve())
            log.info("the image of %s is gone from the engine; looking for another", record)
    images = find_images(client, {L.KIND: "final", L.TARGET: target})
    images = [i for i in images if i.tags and smoke_passed(str(i.id)) is not None]
    if not images:
        raise PublishError(
            f"no final image of target {target!r} that a smoke test passed in this Docker "
            f"engine: build it first (vdsm build {target})"
        )
    newest = max(images, key=lambda i: str(i.attrs.get("Created", "")))
    return FinalImage(str(newest.id), list(newest.tags), None)


def publish(
    client: docker.DockerClient,
    target: str,
    repository: str,
    *,
    record: Path | None = Path("out/latest/result.json"),
) -> PublishResult:
    """Push every tag of the target's final image to ``repository``; return the digest."""
    _check_repository(repository)
    final = find_final_image(client, target, record)
    smoke = smoke_passed(final.image_id)
    if smoke is None:
        raise PublishError(
            f"image {final.image_id[:19]} ({', '.join(final.tags)}) passed no smoke test "
            f"recorded in this user's cache ({trust_folder()}; a copy carries the labels, not "
            "the record, and another user's build records in its own): run vdsm build "
            f"{target} and publish the image it promotes"
        )
    image = client.images.get(final.image_id)
    pushed: list[PushResult] = []
    for tag in final.tags:
        _, tag_name = split_reference(tag)
        if not image.tag(repository, tag_name):
            raise PublishError(f"could not tag {final.image_id[:19]} as {repository}:{tag_name}")
        result = push(client, f"{repository}:{tag_name}")
        log.info("pushed %s:%s (%s)", repository, tag_name, result.digest)
        pushed.append(result)
    digests = {p.digest for p in pushed}
    if len(digests) != 1:
        raise PublishError(f"the tags of one image were pushed with different digests: {digests}")
    outcome = PublishResult(final.image_id, repository, digests.pop(), pushed)
    outcome.records = [_push_final_record(client, repository, p, smoke) for p in pushed]
    record_digest(final.image_id, outcome.reference)
    if final.record is not None:
        outcome.record = str(final.record)
        _record(final.record, outcome)
    return outcome


def _push_final_record(
    client: docker.DockerClient, repository: str, pushed: PushResult, smoke: SmokePassed
) -> str:
    """Push the record beside ``repository:<tag>``: what a build that pulls it trusts."""
    ref = f"{repository}:{record_tag(pushed.tag)}"
    record = {
        "reference": f"{repository}:{pushed.tag}",
        "digest": pushed.digest,
        "image_id": smoke.image_id,
        "stage": "image",
        "fingerprint": smoke.fingerprint,
        "run_id": smoke.run_id,
        "tags": smoke.tags,
    }
    try:
        result = push_record(client, ref, record)
    except (RegistryError, docker.errors.DockerException) as err:
        raise PublishError(
            f"pushed {repository}:{pushed.tag}, but not its record {ref} (a build that pulls "
            f"the image will not trust it): {str(err).splitlines()[0]}; run vdsm publish again"
        ) from err
    return f"{result.repository}@{result.digest}"


def trust_pulled(client: docker.DockerClient, fingerprint: str) -> list[str]:
    """Trust the final images of ``fingerprint`` that were pulled from a registry and have no
    smoke record here, by the record ``vdsm publish`` pushed beside their tag: when it names
    the image's digest and ID, the smoke record it carries is written to this user's cache.
    Returns one line for each pulled image that is not trusted (no record, another digest, or
    pulled by digest alone), saying why and what to do. Images never pushed or pulled (no
    RepoDigests) are left to :func:`vdsmlib.pipeline.trust.trusted_final`."""
    lines = []
    for image in find_images(client, {L.KIND: "final", L.FINGERPRINT: fingerprint}):
        image_id = str(image.id)
        repositories = sorted(
            {str(d).partition("@")[0] for d in image.attrs.get("RepoDigests") or []}
        )
        if smoke_passed(image_id) is not None or not repositories:
            continue
        reasons = []
        for repository in repositories:
            reason = _trust_by_record(client, image, repository, fingerprint)
            if not reason:
                break
            reasons.append(reason)
        else:
            lines.append(
                f"pulled final image {image_id.split(':')[-1][:12]} not trusted: "
                f"{'; '.join(reasons)} (a pulled image is trusted by the record vdsm publish "
                "pushes beside its tag: pull one it published; this build smoke-tests its own)"
            )
    return lines


def _trust_by_record(
    client: docker.DockerClient, image: Any, repository: str, fingerprint: str
) -> str:
    """``""`` when a record beside one of the image's tags in ``repository`` vouches for it
    (and the smoke record is written), else why not."""
    tags = [t.rpartition(":")[2] for t in image.tags if t.rpartition(":")[0] == repository]
    if not tags:
        return (
            f"{repository}@... has no tag here (pulled by digest), and its record is beside a tag"
        )
    image_id = str(image.id)
    reasons = []
    for tag in tags:
        ref, record_ref = f"{repository}:{tag}", f"{repository}:{record_tag(tag)}"
        record: dict[str, Any] | None = None
        try:
            record = read_record(client, record_ref)
            why = judge_pull(ref, image_id, repo_digests(image, repository), record, record_ref)
        except (RegistryError, docker.errors.DockerException, ValueError) as err:
            why = f"{ref} refused: its record {record_ref} could not be read ({err}); not used"
        if why or record is None:
            reasons.append(why)
            continue
        tags_recorded = [str(t) for t in record.get("tags") or []] or [ref]
        record_smoke_passed(image_id, str(record.get("run_id", "")), fingerprint, tags_recorded)
        record_digest(image_id, f"{repository}@{record['digest']}")
        log.info("pulled final image %s trusted: %s names its digest", ref, record_ref)
        return ""
    return "; ".join(reasons)


def _record(path: Path, outcome: PublishResult) -> None:
    """Add the published references to the build's ``result.json`` (atomically)."""
    data = json.loads(path.read_text())
    published = [p for p in data.get("published", []) if p.get("repository") != outcome.repository]
    published.append(
        {
            "repository": outcome.repository,
            "digest": outcome.digest,
            "reference": outcome.reference,
            "tags": [f"{p.repository}:{p.tag}" for p in outcome.pushed],
            "pushes": [asdict(p) for p in outcome.pushed],
        }
    )
    data["published"] = published
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
