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
from vdsmlib.docker.images import builds_on, find_images, image_layers
from vdsmlib.pipeline.base import cache_dir

__all__ = [
    "SmokePassed",
    "TrustedFinal",
    "describe_untrusted",
    "fingerprint_records",
    "record_digest",
    "record_smoke_passed",
    "smoke_passed",
    "trust_folder",
    "trusted_final",
    "why_untrusted",
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


def trust_folder() -> Path:
    """Where this user's smoke records are (``<cache>/trust``): each user's builds keep their
    own, so an image another user's build smoke-tested on the same engine has none here."""
    return cache_dir() / "trust"


def _path(image_id: str) -> Path:
    algorithm, _, digest = image_id.partition(":")
    if not digest or not digest.isalnum() or not algorithm.isalnum():
        raise ValueError(f"not an image ID: {image_id!r}")
    return trust_folder() / f"{algorithm}-{digest}.json"


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


def fingerprint_records(fingerprint: str) -> list[SmokePassed]:
    """This user's smoke records of final images with ``fingerprint`` (their images may be
    gone from the engine)."""
    records: list[SmokePassed] = []
    folder = trust_folder()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = SmokePassed(**json.loads(path.read_text()))
            named_for_its_image = path == _path(record.image_id)
        except (OSError, ValueError, TypeError):
            continue
        if record.fingerprint == fingerprint and named_for_its_image:
            records.append(record)
    return records


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
    #: the images a smoke test passed, and this user's records of the fingerprint
    trusted: list[Image] = field(default_factory=list)
    records: list[SmokePassed] = field(default_factory=list)

    def note(self) -> str:
        """What was ignored and why, for the plan's reason ("" when nothing was)."""
        return describe_untrusted(
            self.untrusted, others=[*self.trusted, *self.untrusted], records=self.records
        )


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
    records = fingerprint_records(fingerprint) if untrusted else []
    passed = [image for image, _ in trusted]
    if not trusted:
        return TrustedFinal(None, None, untrusted, passed, records)
    image, record = max(trusted, key=lambda pair: pair[1].at)
    return TrustedFinal(image, record, untrusted, passed, records)


def _short(image_id: str) -> str:
    return image_id.split(":")[-1][:12]


def why_untrusted(
    image: Image, others: Sequence[Image] = (), records: Sequence[SmokePassed] = ()
) -> str:
    """Why ``image`` (final labels, no smoke record here) is not trusted, from what is known:

    - its layers are another labelled image's and more, or exactly those of the image the
      smoke test passed: a copy of it (``docker commit`` or ``FROM``);
    - this user's records name another image ID for one of its tags or its fingerprint: a
      copy, not the image the smoke test passed;
    - else nothing here says it was smoke-tested: no record in this user's cache (another
      user's build on the same engine keeps its records in its own cache).
    """
    recorded = {record.image_id for record in records}
    for other in others:
        if not builds_on(image, other):
            continue
        if len(image_layers(other)) < len(image_layers(image)):
            return f"a copy of {_short(str(other.id))} (its layers and more: docker commit or FROM)"
        if other.id in recorded:
            # the smoke-tested content under another configuration: a commit without changes
            return f"a copy of {_short(str(other.id))} (the same layers: docker commit)"
    tags = set(image.tags)
    other_images = [record for record in records if record.image_id != image.id]
    for record in sorted(other_images, key=lambda record: not tags & set(record.tags)):
        named = sorted(tags & set(record.tags))
        what = f"for {', '.join(named)}" if named else "for this fingerprint"
        return f"a copy: this user's smoke record {what} is of image {_short(record.image_id)}"
    return (
        f"no smoke record in this user's cache ({trust_folder()}): smoke-tested by another "
        "user's build here, or a copy"
    )


def describe_untrusted(
    images: Sequence[Image],
    *,
    others: Sequence[Image] = (),
    records: Sequence[SmokePassed] = (),
) -> str:
    """One clause naming images that carry the final labels but passed no smoke test recorded
    here, each with :func:`why_untrusted` (``others``: the images with the same labels;
    ``records``: this user's records of the fingerprint)."""
    if not images:
        return ""
    names = "; ".join(
        _short(str(i.id))
        + (f" ({', '.join(i.tags)})" if i.tags else "")
        + f": {why_untrusted(i, others, records)}"
        for i in images
    )
    return (
        f"ignored {len(images)} image(s) labelled as this final image that no smoke test "
        f"recorded here passed: {names}"
    )
