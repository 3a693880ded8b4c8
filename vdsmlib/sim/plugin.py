"""The simulator's entry points into vdsmlib's registries (see :mod:`vdsmlib.plugins`)."""

from __future__ import annotations

import docker

from vdsmlib.params import Params
from vdsmlib.sim.image.build import ensure_sim_image

__all__ = ["kvm_probe_image", "upstream_image"]


def upstream_image(client: docker.DockerClient, params: Params) -> str:
    """``base.source: sim-build``: the simulator image, built locally (reused when unchanged)."""
    return str(ensure_sim_image(client).ref)


def kvm_probe_image(client: docker.DockerClient) -> tuple[str, str]:
    """The simulator image carries ``/run/probe.sh``, a small guest that shows whether KVM boots."""
    image = ensure_sim_image(client)
    return str(image.ref), str(image.qemu_version)
