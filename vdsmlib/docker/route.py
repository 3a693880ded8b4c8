"""A host route to DSM's own address, for clients that go where DSM tells them to.

Behind virtual-dsm's NAT, DSM has an address of its own (20.20.20.21, ``base.guest_address``)
that only the container can reach. Most clients never see it: they use the published ports.
iSCSI is the exception: discovery (SendTargets) answers with the portal the target advertises,
DSM's own address, and initiators log in there (``iscsiadm -m node ... --login``, ``iscsi-ls
-s``, the Synology CSI node plugin). Routing that one address through the container makes the
advertised portal reachable from this host: the container forwards it to DSM (its NAT only
rewrites traffic addressed to the container itself)::

    with guest_route("20.20.20.21", container_address(container)):
        subprocess.run(["iscsi-ls", "-s", f"iscsi://127.0.0.1:{port}"])

The same by hand: ``sudo ip route replace 20.20.20.21/32 via <container address>``. One route
per host: two DSM containers share the address, so only one of them is reachable this way.

Changing the host's routes needs CAP_NET_ADMIN. An ordinary user in the ``docker`` group (a
hosted CI runner) has it only through Docker: given the DSM container as ``helper``, the route is
changed by a short-lived container of its image (which has ``ip``) on the host's network.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import docker.errors

from vdsmlib.errors import VdsmError

__all__ = ["container_address", "guest_route"]

log = logging.getLogger(__name__)


def container_address(container: Any) -> str:
    """The container's IPv4 address on its (first) Docker network."""
    container.reload()
    networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
    for network in networks.values():
        if network.get("IPAddress"):
            return str(network["IPAddress"])
    raise VdsmError(f"container {container.short_id} has no IPv4 address on a Docker network")


def _ip(*argv: str, helper: Any = None) -> subprocess.CompletedProcess[str]:
    if helper is not None and os.geteuid() != 0:
        return _ip_in_container(helper, list(argv))
    ip = shutil.which("ip")
    if ip is None:
        raise VdsmError("`ip` not found: apt-get install iproute2")
    return subprocess.run([ip, *argv], capture_output=True, text=True, check=False)


def _ip_in_container(helper: Any, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``ip ARGV`` on the host's network namespace, run by a container of ``helper``'s image."""
    try:
        out = helper.client.containers.run(
            helper.image.id,
            argv,
            entrypoint=["ip"],
            network_mode="host",
            cap_add=["NET_ADMIN"],
            remove=True,
            stdout=True,
            stderr=True,
        )
    except docker.errors.ContainerError as err:
        said = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else ""
        return subprocess.CompletedProcess(["ip", *argv], err.exit_status, "", said)
    except docker.errors.DockerException as err:
        return subprocess.CompletedProcess(["ip", *argv], 1, "", f"through Docker: {err}")
    return subprocess.CompletedProcess(["ip", *argv], 0, bytes(out).decode(errors="replace"), "")


@contextlib.contextmanager
def guest_route(guest_address: str, via: str, *, helper: Any = None) -> Iterator[None]:
    """Route ``guest_address`` through the container at ``via`` while the block runs.

    Needs CAP_NET_ADMIN on this host: root, or, with ``helper`` (the DSM container), Docker.
    The route is removed on exit, also on error.
    """
    target = f"{guest_address.split(':')[0]}/32"
    added = _ip("route", "replace", target, "via", via, helper=helper)
    if added.returncode != 0:
        said = (added.stderr or added.stdout).strip().splitlines()
        raise VdsmError(
            f"could not route {target} via {via} ({said[-1] if said else 'no message'}): "
            f"it needs root; run `sudo ip route replace {target} via {via}`"
        )
    log.info("routed %s via %s (DSM's own address, through its container)", target, via)
    try:
        yield
    finally:
        removed = _ip("route", "del", target, "via", via, helper=helper)
        if removed.returncode != 0:
            log.warning("could not remove the route %s via %s: %s", target, via, removed.stderr)
