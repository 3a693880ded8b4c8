"""Images: building from a Dockerfile with streamed logs, finding by label, sizes, cleanup."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, BuildError, DockerException, ImageNotFound, NotFound
from docker.models.images import Image

from vdsmlib.docker import labels as L
from vdsmlib.docker.engine import DockerError

__all__ = [
    "CleanReport",
    "build_image",
    "clean",
    "find_images",
    "get_image",
    "image_size",
    "remove_image",
]

log = logging.getLogger(__name__)


def build_image(
    client: docker.DockerClient,
    context: Path,
    *,
    dockerfile: str,
    tag: str,
    buildargs: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Image:
    """``docker build`` with the log streamed to logging; errors carry the log tail."""
    lines: list[str] = []
    try:
        stream = client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=dict(buildargs or {}),
            labels=dict(labels or {}),
            rm=True,
            forcerm=True,
            decode=True,
        )
        image_id = None
        for chunk in stream:
            if "stream" in chunk:
                text = str(chunk["stream"]).rstrip()
                if text:
                    lines.append(text)
                    log.debug("build %s: %s", tag, text)
            if "error" in chunk:
                raise BuildError(str(chunk["error"]), lines)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = aux["ID"]
        if image_id is None:
            image_id = client.images.get(tag).id
        return client.images.get(image_id)
    except BuildError as err:
        tail = "\n".join(lines[-20:])
        raise DockerError(f"docker build of {tag} failed: {err.msg}\n{tail}") from err
    except (APIError, DockerException) as err:
        tail = "\n".join(lines[-20:])
        raise DockerError(f"docker build of {tag} failed: {err}\n{tail}") from err


def get_image(client: docker.DockerClient, ref: str) -> Image | None:
    try:
        return client.images.get(ref)
    except (ImageNotFound, NotFound):
        return None
    except DockerException as err:
        raise DockerError(f"could not inspect image {ref}: {err}") from err


def find_images(client: docker.DockerClient, labels: Mapping[str, str]) -> list[Image]:
    """Images carrying all ``labels``, newest first."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    images = client.images.list(filters=filters)
    return sorted(images, key=lambda i: str(i.attrs.get("Created", "")), reverse=True)


def image_size(image: Image) -> int:
    return int(image.attrs.get("Size", 0))


def remove_image(client: docker.DockerClient, ref: str) -> None:
    try:
        client.images.remove(ref, force=True)
    except (ImageNotFound, NotFound):
        pass
    except DockerException as err:
        raise DockerError(f"could not remove image {ref}: {err}") from err


class CleanReport(dict[str, Any]):
    """What :func:`clean` removed: ``containers``, ``images`` and ``networks`` lists."""


def clean(
    client: docker.DockerClient,
    *,
    run_id: str | None = None,
    images: bool = True,
    kinds: tuple[str, ...] = (),
    dry_run: bool = False,
) -> CleanReport:
    """Remove containers (and images) this project created, found by label.

    With ``run_id``: what that run created, whether its process runs or not (a build cleans up
    after itself). Without: only what belongs to runs that are no longer alive
    (:func:`~vdsmlib.docker.labels.run_alive`). Images only of the ``kinds`` given (none by
    default: checkpoints and build bases are a cache, final images are results); a final image
    carries no run's ownership, so it is found by its kind.
    """
    label = {L.OWNER: L.OWNER_VALUE}
    if run_id:
        label[L.RUN_ID] = run_id
    report = CleanReport(containers=[], images=[], networks=[])
    filters = {"label": [f"{k}={v}" for k, v in label.items()]}
    for container in client.containers.list(all=True, filters=filters):
        if not run_id and L.run_alive(container.labels):
            continue
        report["containers"].append(f"{container.short_id} {container.name}")
        if not dry_run:
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=True)
    if images and kinds:
        seen: set[str] = set()
        found = list(client.images.list(filters=filters))
        if "final" in kinds and not run_id:
            found += client.images.list(filters={"label": [f"{L.KIND}=final"]})
        for image in found:
            if image.id in seen or image.labels.get(L.KIND) not in kinds:
                continue
            seen.add(str(image.id))
            if not run_id and L.run_alive(image.labels):
                continue
            refs = image.tags or [image.id]
            report["images"].append(", ".join(refs))
            if not dry_run:
                for ref in refs:
                    remove_image(client, ref)
    for network in client.networks.list(filters=filters):
        if not run_id and L.run_alive(network.attrs.get("Labels")):
            continue
        report["networks"].append(str(network.name))
        if not dry_run:
            with contextlib.suppress(NotFound, APIError):
                network.remove()
    log.info("clean: %s", json.dumps(report))
    return report
