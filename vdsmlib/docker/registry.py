"""Images through an OCI registry: push (returning the digest) and pull, with errors that say
what failed (authentication, registry unreachable, not found) and what to do.

Credentials come from Docker's own configuration (``docker login``), as for ``docker push``::

    from vdsmlib.docker.engine import connect
    from vdsmlib.docker.registry import push

    pushed = push(connect(), "registry.example.com/ci/dsm:7.2.2-kvm")
    print(pushed.reference)   # registry.example.com/ci/dsm@sha256:...
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from vdsmlib.docker.engine import DockerError

__all__ = ["PushResult", "RegistryError", "pull", "push", "split_reference"]

log = logging.getLogger(__name__)


class RegistryError(DockerError):
    """A push or pull failed; ``kind``: auth, unreachable, not-found or other."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class PushResult:
    repository: str
    tag: str
    digest: str
    size_bytes: int
    seconds: float

    @property
    def reference(self) -> str:
        """``repository@digest``: what consumers should pull."""
        return f"{self.repository}@{self.digest}"


def split_reference(ref: str) -> tuple[str, str]:
    """``host:port/repo:tag`` -> (``host:port/repo``, ``tag``); the tag defaults to latest."""
    name, _, digest = ref.partition("@")
    if digest:
        return name, digest
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, "latest"


_AUTH = ("unauthorized", "authentication required", "denied", "no basic auth credentials")
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "dial tcp",
    "server gave http response to https client",
    "network is unreachable",
    "context deadline exceeded",
)
_NOT_FOUND = ("not found", "manifest unknown", "does not exist", "name unknown")


def _classify(message: str, ref: str, verb: str) -> RegistryError:
    text = message.lower()
    registry = ref.split("/", 1)[0] if "/" in ref else "docker.io"
    if any(word in text for word in _AUTH):
        return RegistryError(
            f"{verb} {ref}: the registry refused the credentials ({message.strip()}); "
            f"run `docker login {registry}` with an account that may {verb} there",
            kind="auth",
        )
    if any(word in text for word in _UNREACHABLE):
        return RegistryError(
            f"{verb} {ref}: registry {registry} cannot be reached ({message.strip()}); "
            "check the address, the network and, for a plain-HTTP registry, Docker's "
            "insecure-registries",
            kind="unreachable",
        )
    if any(word in text for word in _NOT_FOUND):
        return RegistryError(
            f"{verb} {ref}: not found ({message.strip()}); check the repository and tag",
            kind="not-found",
        )
    return RegistryError(f"{verb} {ref} failed: {message.strip()}", kind="other")


def _stream(chunks: Iterable[Mapping[str, Any]], ref: str, verb: str) -> dict[str, Any]:
    """Consume a push/pull progress stream; return the ``aux`` data; raise on an error."""
    aux: dict[str, Any] = {}
    last_status = ""
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = str(chunk.get("error") or detail.get("message") or chunk)
            raise _classify(message, ref, verb)
        if isinstance(chunk.get("aux"), dict):
            aux.update(chunk["aux"])
        status = str(chunk.get("status", ""))
        if status and status != last_status and "id" not in chunk:
            log.info("%s %s: %s", verb, ref, status)
            last_status = status
    return aux


def push(client: docker.DockerClient, ref: str) -> PushResult:
    """Push the local image ``ref`` (``repository:tag``); return its digest in the registry."""
    repository, tag = split_reference(ref)
    started = time.monotonic()
    try:
        chunks = client.api.push(repository, tag=tag, stream=True, decode=True)
        aux = _stream(chunks, ref, "push")
    except docker.errors.APIError as err:
        raise _classify(str(err.explanation or err), ref, "push") from err
    except docker.errors.DockerException as err:
        raise DockerError(f"push {ref}: the Docker engine failed: {err}") from err
    digest = str(aux.get("Digest", ""))
    if not digest.startswith("sha256:"):
        raise RegistryError(f"push {ref}: the registry returned no digest ({aux})", kind="other")
    return PushResult(
        repository=repository,
        tag=tag,
        digest=digest,
        size_bytes=int(aux.get("Size", 0)),
        seconds=time.monotonic() - started,
    )


def pull(client: docker.DockerClient, ref: str) -> str:
    """Pull ``ref`` (``repository:tag`` or ``repository@sha256:...``); return the image id."""
    repository, tag_or_digest = split_reference(ref)
    try:
        chunks = client.api.pull(repository, tag=tag_or_digest, stream=True, decode=True)
        _stream(chunks, ref, "pull")
        image = client.images.get(ref)
    except docker.errors.APIError as err:
        raise _classify(str(err.explanation or err), ref, "pull") from err
    except docker.errors.DockerException as err:
        raise DockerError(f"pull {ref}: the Docker engine failed: {err}") from err
    return str(image.id)
