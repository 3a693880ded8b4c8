"""Which final images a smoke test passed: records keyed by image ID, not by labels.

Labels are no proof: ``docker commit`` and ``FROM`` copy them into derived images, so a copy of
the final image carries its kind and fingerprint. What is trusted is the image *content*: when
the smoke stage has passed and promoted an image, it writes ``<cache>/trust/<image id>.json``
(the run, the fingerprint, the tags it gave). A copy has another image ID and no record, so no
build reuses it, no tag moves onto it and ``vdsm publish`` refuses it. ``vdsm publish`` adds
the registry digest it pushed to the record.

::

    from vdsmlib.pipeline.trust import smoke_passed

    record = smoke_passed(image.id)   # None: no smoke test of this user's builds passed it
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.models.images import Image

from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images
from vdsmlib.pipeline.base import cache_dir

__all__ = [
    "SmokePassed",
    "TrustedFinal",
    "describe_untrusted",
    "record_digest",
    "record_smoke_passed",
    "smoke_passed",
    "trusted_final",
]


@dataclass
class SmokePassed:
    """What a passing smoke test recorded about the image it promoted."""

    image_id: str
    run_id: str
    fingerprint: str
    tags: list[str]
    at: float = field(default_factory=time.time)
    #: registry digests ``vdsm publish`` pushed this image as (``repo@sha256:...``)
    published: list[str] = field(default_factory=list)


def _folder() -> Path:
    return cache_dir() / "trust"


def _path(image_id: str) -> Path:
    algorithm, _, digest = image_id.partition(":")
    if not digest or not digest.isalnum() or not algorithm.isalnum():
        raise ValueError(f"not an image ID: {image_id!r}")
    return _folder() / f"{algorithm}-{digest}.json"


def _write(record: SmokePassed) -> None:
    path = _path(record.image_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
    os.replace(tmp, path)


def record_smoke_passed(image_id: str, run_id: str, fingerprint: str, tags: Sequence[str]) -> None:
    """The smoke test of ``run_id`` passed the image ``image_id`` (call only then)."""
    _write(SmokePassed(image_id, run_id, fingerprint, list(tags)))


def smoke_passed(image_id: str) -> SmokePassed | None:
    """The record of the smoke test that passed ``image_id``, or None."""
    try:
        data: dict[str, Any] = json.loads(_path(image_id).read_text())
        record = SmokePassed(**data)
    except (OSError, ValueError, TypeError):
        return None
    return record if record.image_id == image_id else None


def record_digest(image_id: str, reference: str) -> None:
    """``vdsm publish`` pushed the trusted ``image_id`` as ``reference`` (``repo@digest``)."""
    record = smoke_passed(image_id)
    if record is not None and reference not in record.published:
        record.published.append(reference)
        _write(record)


@dataclass
class TrustedFinal:
    """The final images with one fingerprint: the one to reuse, and the copies ignored."""

    image: Image | None
    record: SmokePassed | None
    untrusted: list[Image]

    def note(self) -> str:
        """What was ignored, for the plan's reason ("" when nothing was)."""
        return describe_untrusted(self.untrusted)


def trusted_final(client: docker.DockerClient, fingerprint: str) -> TrustedFinal:
    """The final image of ``fingerprint`` that a smoke test passed (the most recently promoted),
    and the images labelled so that none passed (copies: ``docker commit``, ``FROM``)."""
    found = find_images(client, {L.KIND: "final", L.FINGERPRINT: fingerprint})
    trusted: list[tuple[Image, SmokePassed]] = []
    untrusted: list[Image] = []
    for image in found:
        record = smoke_passed(str(image.id))
        if record is None:
            untrusted.append(image)
        else:
            trusted.append((image, record))
    if not trusted:
        return TrustedFinal(None, None, untrusted)
    image, record = max(trusted, key=lambda pair: pair[1].at)
    return TrustedFinal(image, record, untrusted)


def describe_untrusted(images: Sequence[Image]) -> str:
    """One clause naming images that carry the final labels but passed no smoke test."""
    if not images:
        return ""
    names = ", ".join(
        f"{str(i.id).split(':')[-1][:12]}" + (f" ({', '.join(i.tags)})" if i.tags else "")
        for i in images
    )
    return (
        f"ignored {len(images)} image(s) labelled as this final image that no smoke test passed "
        f"(copies: docker commit or FROM): {names}"
    )
