"""The simulator's entry points into vdsmlib's registries (see :mod:`vdsmlib.pipeline.plugins`)."""

from __future__ import annotations

import docker

from vdsm_sim.image.build import UPSTREAMS, SimImage, ensure_sim_image, find_sim_image
from vdsmlib.params import Params

__all__ = ["kvm_probe_image", "upstream_image", "upstream_of"]


def _sim_image(
    client: docker.DockerClient, *, make: bool, upstream: str = UPSTREAMS[0]
) -> SimImage | None:
    """The current tree's simulator image, built when missing (``make=False``: None then)."""
    if not make:
        return find_sim_image(client, upstream=upstream)
    return ensure_sim_image(client, upstream=upstream)


def upstream_of(params: Params) -> str:
    """The release a ``sim-build`` target's twin follows: the tag of ``base.image``
    (``vdsm-ci/sim:7.65``); ``latest`` or any other tag is 7.41's twin."""
    tag = params.base.image.split("@", 1)[0].rpartition(":")[2]
    return tag if tag in UPSTREAMS else UPSTREAMS[0]


def upstream_image(client: docker.DockerClient, params: Params, *, make: bool = True) -> str | None:
    """``base.source: sim-build``: the simulator image, built locally (reused when unchanged)."""
    image = _sim_image(client, make=make, upstream=upstream_of(params))
    return None if image is None else str(image.ref)


def kvm_probe_image(client: docker.DockerClient, *, make: bool = True) -> tuple[str, str] | None:
    """The simulator image carries ``/run/probe.sh``, a small guest that shows whether KVM boots.

    Looked up first, so that a build whose ``upstream_image`` already said "simulator image ...
    reused" (or built) does not say it a second time."""
    image = find_sim_image(client) or _sim_image(client, make=make)
    return None if image is None else (str(image.ref), str(image.qemu_version))
