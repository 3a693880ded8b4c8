"""What the storage folder of an image holds, against what restoring a checkpoint needs.

The consumer of a final image pays for every byte of its storage folder; restoring ``final``
needs only the disks' contents (``qemu-img measure``: as a fresh qcow2 would hold them; at an
internal snapshot when a disk lists one of that name) and ``final.state``. Read inside a
throwaway container of the image (its QEMU tools read its own disks)::

    disks = disk_footprints(client, "ghcr.io/vdsm-ci/vdsm-configured:sim-tcg")
    files = storage_files(client, "ghcr.io/vdsm-ci/vdsm-configured:sim-tcg")
    held = sum(d.bytes for d in disks.values())
    needed = sum(d.required for d in disks.values()) + files["final.state"]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from vdsmlib.docker import labels as L
from vdsmlib.docker.engine import DockerError
from vdsmlib.qemu.image import SnapshotInfo

__all__ = ["DiskFootprint", "disk_footprints", "storage_files"]

#: one line per file in /storage: name, bytes, `qemu-img info` and `qemu-img measure` of the
#: contents at snapshot $1, or of the current contents when the disk lists no such snapshot
#: (both JSON on one line; empty for files that are not disks)
_LIST_DISKS = r"""
cd /storage
for f in *; do
  info=$(qemu-img info --output=json -U -- "$f" 2>/dev/null | tr -d '\n')
  need=$(qemu-img measure --output=json -O qcow2 -l "snapshot.name=$1" -- "$f" 2>/dev/null) ||
    need=$(qemu-img measure --output=json -O qcow2 -- "$f" 2>/dev/null)
  need=$(printf '%s' "$need" | tr -d '\n')
  printf '%s\t%s\t%s\t%s\n' "$f" "$(stat -c %s -- "$f")" "$info" "$need"
done
"""


@dataclass(frozen=True)
class DiskFootprint:
    """One qcow2 disk of an image.

    ``bytes``: the file's size (what a layer stores); ``snapshots``: the internal snapshots it
    lists; ``required``: bytes of a qcow2 holding its contents at the snapshot asked about, or
    its current contents when it lists no such snapshot (None when qemu-img could not measure
    it); ``vm_state``: that snapshot's VM state on this disk (0 for a state in a file).
    """

    name: str
    bytes: int
    snapshots: tuple[SnapshotInfo, ...]
    required: int | None
    vm_state: int


def disk_footprints(
    client: docker.DockerClient, image: str, snapshot: str = "final"
) -> dict[str, DiskFootprint]:
    """The qcow2 disks in ``image``'s ``/storage``, each against ``snapshot``."""
    disks: dict[str, DiskFootprint] = {}
    for line in _listing(client, image, snapshot):
        name, size, info, need = [*line.split("\t"), "", "", ""][:4]
        if not info:
            continue
        parsed: dict[str, Any] = json.loads(info)
        if parsed.get("format") != "qcow2":
            continue
        snapshots = tuple(
            SnapshotInfo.from_qemu(s, node=name, file=name) for s in parsed.get("snapshots", [])
        )
        disks[name] = DiskFootprint(
            name=name,
            bytes=int(size),
            snapshots=snapshots,
            required=int(json.loads(need)["required"]) if need else None,
            vm_state=sum(s.vm_state_size for s in snapshots if s.name == snapshot),
        )
    return disks


def storage_files(client: docker.DockerClient, image: str) -> dict[str, int]:
    """Every file in ``image``'s ``/storage`` (disks, state files, virtual-dsm's own) and its
    size in bytes."""
    files = {}
    for line in _listing(client, image, "final"):
        name, size = [*line.split("\t"), ""][:2]
        if size.isdigit():
            files[name] = int(size)
    return files


def _listing(client: docker.DockerClient, image: str, snapshot: str) -> list[str]:
    try:
        out = client.containers.run(
            image,
            ["-c", _LIST_DISKS, "footprint", snapshot],
            entrypoint="/bin/bash",
            remove=True,
            labels=L.owner_labels("footprint", None),
        )
    except docker.errors.DockerException as err:
        raise DockerError(f"cannot list the disks of {image}: {err}") from err
    return bytes(out).decode(errors="replace").splitlines()
