"""Connecting to the Docker engine, and the errors of this layer."""

from __future__ import annotations

import docker
from docker.errors import DockerException

from vdsmlib.errors import VdsmError

__all__ = ["DockerError", "DockerUnavailable", "connect"]


class DockerError(VdsmError):
    """A Docker engine operation failed."""


class DockerUnavailable(DockerError):
    """The Docker engine cannot be reached."""


def connect(timeout: int = 600) -> docker.DockerClient:
    """A client of the local engine (``DOCKER_HOST`` honoured), checked with a ping.

    Raises :class:`DockerUnavailable` with one line saying how to start Docker.
    """
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as err:
        raise DockerUnavailable(
            f"Docker is not running or not reachable ({err.__class__.__name__}: "
            f"{str(err).splitlines()[0][:160]}): start it (`systemctl start docker`, or "
            "`dockerd &` as root) or set DOCKER_HOST"
        ) from err
    return client
