"""Publish a final image: push its tags to a registry repository and record the digest.

The image is the one the last build of the target produced (``out/latest/result.json``), or
the newest local final image of the target; either way one whose smoke test passed (by image
ID, :mod:`vdsmlib.pipeline.trust`): a copy that carries the final image's labels is refused.
Each of its tags is pushed under the new repository with the same tag name; the digest is
printed and written to the run's record and to the image's smoke-test record::

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

from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images, get_image
from vdsmlib.docker.registry import PushResult, push, split_reference
from vdsmlib.errors import VdsmError
from vdsmlib.pipeline.trust import record_digest, smoke_passed, trust_folder

__all__ = ["PublishError", "PublishResult", "find_final_image", "publish"]

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
    if smoke_passed(final.image_id) is None:
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
    record_digest(final.image_id, outcome.reference)
    if final.record is not None:
        outcome.record = str(final.record)
        _record(final.record, outcome)
    return outcome


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
