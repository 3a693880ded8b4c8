"""Images: building from a Dockerfile with streamed logs, finding by label, sizes, cleanup."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Collection, Mapping
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
    "builds_on",
    "clean",
    "find_images",
    "get_image",
    "image_layers",
    "image_size",
    "images_in_use",
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


def _remove_ref(client: docker.DockerClient, ref: str, report: CleanReport) -> None:
    """Remove a tag, or an untagged image by ID; never forced (Docker keeps an image that a
    container or a child image uses).

    An untagged image pushed to registries is still referenced by its ``repo@digest`` names,
    and Docker refuses to remove it by ID ("referenced in multiple repositories"): those names
    go first, then the image.
    """
    try:
        if ref.startswith("sha256:"):
            with contextlib.suppress(ImageNotFound, NotFound):
                for digest in client.images.get(ref).attrs.get("RepoDigests") or []:
                    client.images.remove(digest)
        client.images.remove(ref)
    except (ImageNotFound, NotFound):
        pass
    except APIError as err:
        report["kept"].append(f"{ref} ({err.explanation or err})")


def remove_image(client: docker.DockerClient, ref: str) -> None:
    try:
        client.images.remove(ref, force=True)
    except (ImageNotFound, NotFound):
        pass
    except DockerException as err:
        raise DockerError(f"could not remove image {ref}: {err}") from err


class CleanReport(dict[str, Any]):
    """What :func:`clean` removed: ``containers``, ``images`` and ``networks`` lists; ``kept``:
    images it would have removed but kept (used by a container or a live build)."""


def images_in_use(client: docker.DockerClient) -> dict[str, str]:
    """Image ID -> a container (any owner, running or not) created from it."""
    used: dict[str, str] = {}
    for container in client.containers.list(all=True):
        image = str(container.attrs.get("Image", ""))
        if image:
            used.setdefault(image, f"{container.short_id} {container.name}")
    return used


def _live_runs(client: docker.DockerClient, filters: dict[str, list[str]]) -> list[str]:
    """Run ids of this project's builds whose process still runs (their network says so)."""
    runs = set()
    for obj in [*client.networks.list(filters=filters), *client.containers.list(filters=filters)]:
        labels = obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels") or {}
        if L.run_alive(labels):
            runs.add(labels.get(L.RUN_ID, "?"))
    return sorted(runs)


def _superseded(image: Image, promoted: Callable[[str], bool] | None) -> bool:
    """An untagged image this project made: a checkpoint, build base or simulator image (by its
    owner label), or a final image a build promoted (a copy that inherited the labels is not
    ours)."""
    kind = image.labels.get(L.KIND)
    if kind in ("checkpoint", "base", "sim"):
        return bool(image.labels.get(L.OWNER) == L.OWNER_VALUE)
    return kind == "final" and promoted is not None and promoted(str(image.id))


def image_layers(image: Image) -> list[str]:
    """The image's layer digests (``RootFS.Layers``), base first."""
    return [str(layer) for layer in (image.attrs.get("RootFS") or {}).get("Layers") or []]


def builds_on(image: Image, other: Image) -> bool:
    """True if ``image`` is another image than ``other`` with all of ``other``'s layers first:
    ``docker commit`` of a container of it, or ``FROM`` it (a commit without changes adds no
    layer: then the layers are the same)."""
    base = image_layers(other)
    return other.id != image.id and bool(base) and image_layers(image)[: len(base)] == base


def _size(image: Image) -> str:
    return f"{image_size(image) / 1e6:.0f} MB"


def clean(
    client: docker.DockerClient,
    *,
    run_id: str | None = None,
    images: bool = True,
    kinds: tuple[str, ...] = (),
    dry_run: bool = False,
    repositories: Collection[str] | None = None,
    promoted: Callable[[str], bool] | None = None,
) -> CleanReport:
    """Remove containers (and images) this project created, found by label.

    With ``run_id``: what that run created, whether its process runs or not (a build cleans up
    after itself), its untagged images too (those its flatten was building when it was killed).
    Without: only what belongs to runs that are no longer alive
    (:func:`~vdsmlib.docker.labels.run_alive`), and (with ``images``) the *superseded* images:
    untagged checkpoints, build bases and simulator images, and untagged final images
    ``promoted`` says a build of this project promoted (a copy that inherited the labels is not
    ours). Tagged images only of
    the ``kinds`` given (none by default: checkpoints and build bases are a cache, final images
    are results), and of those only the tags in ``repositories`` (when given); a final image
    carries no run's ownership, so it is found by its kind. No image that a container (any
    owner) was created from is removed, nor, while a build of this project runs, a tagged
    checkpoint or build base (it may restore from one); those are listed in ``kept``.
    """
    label = {L.OWNER: L.OWNER_VALUE}
    if run_id:
        label[L.RUN_ID] = run_id
    report = CleanReport(containers=[], images=[], networks=[], kept=[])
    filters = {"label": [f"{k}={v}" for k, v in label.items()]}
    for container in client.containers.list(all=True, filters=filters):
        if not run_id and L.run_alive(container.labels):
            continue
        report["containers"].append(f"{container.short_id} {container.name}")
        if not dry_run:
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=True)
    if images:
        used = images_in_use(client)
        if dry_run:
            # the containers a real run would have removed are not counted as users
            gone = {c.split(" ", 1)[0] for c in report["containers"]}
            used = {k: v for k, v in used.items() if v.split(" ", 1)[0] not in gone}
        live = [] if run_id else _live_runs(client, filters)
        seen: set[str] = set()
        found = list(client.images.list(filters=filters))
        if not run_id:
            found += client.images.list(filters={"label": [f"{L.KIND}=final"]})
        for image in found:
            kind = image.labels.get(L.KIND)
            if image.id in seen:
                continue
            seen.add(str(image.id))
            if not run_id and L.run_alive(image.labels):
                continue
            if image.tags:
                if kind not in kinds:
                    continue
                refs = [
                    t
                    for t in image.tags
                    if repositories is None or t.rpartition(":")[0] in repositories
                ]
                if not refs:
                    continue
                if live and kind in ("checkpoint", "base"):
                    report["kept"].append(f"{', '.join(refs)} (a build is running: {live[0]})")
                    continue
            elif _superseded(image, promoted) or (kind in kinds and run_id):
                refs = [str(image.id)]
            else:
                continue
            if image.id in used and len(refs) == len(image.tags or refs):
                report["kept"].append(f"{', '.join(refs)} (used by container {used[image.id]})")
                continue
            report["images"].append(f"{', '.join(refs)} ({_size(image)})")
            if not dry_run:
                for ref in refs:
                    _remove_ref(client, ref, report)
    for network in client.networks.list(filters=filters):
        if not run_id and L.run_alive(network.attrs.get("Labels")):
            continue
        report["networks"].append(str(network.name))
        if not dry_run:
            with contextlib.suppress(NotFound, APIError):
                network.remove()
    log.info("clean: %s", json.dumps(report))
    return report
