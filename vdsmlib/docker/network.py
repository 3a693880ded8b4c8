"""The network of one build: stage VMs are reachable only through their loopback-published port.

Before the admin account exists, whoever reaches DSM's wizard can create it. Stage VMs
therefore do not join Docker's default bridge (where every other container could reach them)
but a bridge network of their own run, with inter-container traffic off; Docker isolates
bridge networks from each other, and the published port listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import logging

import docker
from docker.errors import APIError, NotFound

from vdsmlib.docker import labels as L
from vdsmlib.docker.engine import DockerError

__all__ = ["build_network", "network_name", "remove_network"]

log = logging.getLogger(__name__)


def network_name(run_id: str) -> str:
    return f"vdsm-ci-{run_id}"


def build_network(client: docker.DockerClient, run_id: str) -> str:
    """Create (or reuse) the run's network; returns its name."""
    name = network_name(run_id)
    if client.networks.list(names=[name]):
        return name
    try:
        client.networks.create(
            name,
            driver="bridge",
            options={"com.docker.network.bridge.enable_icc": "false"},
            labels=L.owner_labels("network", run_id),
        )
    except APIError as err:
        raise DockerError(
            f"could not create the build's network {name}: {str(err).splitlines()[0]}: "
            "`vdsm clean` removes networks of dead runs (Docker's address pools may be used up)"
        ) from err
    log.info("build network %s", name)
    return name


def remove_network(client: docker.DockerClient, name: str) -> None:
    """Remove a network; quietly if it is gone already."""
    with contextlib.suppress(NotFound):
        client.networks.get(name).remove()
