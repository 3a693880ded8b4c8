"""Listing checkpoints (``vdsm checkpoints``) and restoring one for exploration."""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

import docker

from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images, image_size

__all__ = ["CheckpointInfo", "list_checkpoints"]


@dataclass(frozen=True)
class CheckpointInfo:
    image: str
    stage: str
    dsm_version: str
    fingerprint: str
    accelerator: str
    qemu_version: str
    created: str
    age_seconds: float
    size_bytes: int


def list_checkpoints(
    client: docker.DockerClient, dsm_version: str | None = None
) -> list[CheckpointInfo]:
    """Checkpoint images (and final images), newest first."""
    found: list[CheckpointInfo] = []
    for kind in ("checkpoint", "final"):
        # final images carry no owner label (containers of them belong to their users)
        labels: dict[str, str] = {L.KIND: kind}
        if kind != "final":
            labels[L.OWNER] = L.OWNER_VALUE
        if dsm_version:
            labels[L.DSM_VERSION] = dsm_version
        for image in find_images(client, labels):
            created = str(image.attrs.get("Created", ""))
            try:
                stamp = calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))
                age = time.time() - stamp
            except ValueError:
                age = 0.0
            found.append(
                CheckpointInfo(
                    image=(image.tags or [image.short_id])[0],
                    stage=image.labels.get(L.STAGE, "image" if kind == "final" else "?"),
                    dsm_version=image.labels.get(L.DSM_VERSION, "?"),
                    fingerprint=image.labels.get(L.FINGERPRINT, ""),
                    accelerator=image.labels.get(L.ACCELERATOR, ""),
                    qemu_version=image.labels.get(L.QEMU_VERSION, ""),
                    created=created[:19],
                    age_seconds=max(age, 0.0),
                    size_bytes=image_size(image),
                )
            )
    return sorted(found, key=lambda c: c.created, reverse=True)
