"""The simulator's entry points into vdsmlib's registries (see :mod:`vdsmlib.pipeline.plugins`)."""

from __future__ import annotations

import docker

from vdsm_sim.image.build import SimImage, ensure_sim_image, find_sim_image
from vdsmlib.params import Params
from vdsmlib.pipeline.base import making

__all__ = ["kvm_probe_image", "upstream_image"]


def _sim_image(client: docker.DockerClient) -> SimImage:
    """The current tree's simulator image, built when missing (a no-op check: WorkToDo)."""
    if find_sim_image(client) is None:
        making("the simulator image of this tree")
    return ensure_sim_image(client)


def upstream_image(client: docker.DockerClient, params: Params) -> str:
    """``base.source: sim-build``: the simulator image, built locally (reused when unchanged)."""
    return str(_sim_image(client).ref)


def kvm_probe_image(client: docker.DockerClient) -> tuple[str, str]:
    """The simulator image carries ``/run/probe.sh``, a small guest that shows whether KVM boots."""
    image = _sim_image(client)
    return str(image.ref), str(image.qemu_version)
