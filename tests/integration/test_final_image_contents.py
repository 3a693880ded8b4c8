"""What the final image's disks hold: the ``final`` snapshot and what restoring it needs, nothing
of ``start-ready`` (its snapshot and VM state stay in the start-ready checkpoint image).

The image comes from ``builds.build()``: after ``test_build.py``'s build in the same session it
is a no-op; alone it resumes from the newest matching checkpoint on the engine (or builds). The
disks are read by the image's own ``qemu-img`` (the QEMU that wrote them).
"""

from __future__ import annotations

import json
from typing import Any

import docker
import pytest

from tests.integration.conftest import Builds
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images
from vdsmlib.pipeline import BuildRecord

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: one line per file in /storage: name, bytes, `qemu-img info` and `qemu-img measure` of the
#: disk contents of snapshot `final` (both JSON on one line; empty for files that are not disks)
LIST_DISKS = r"""
cd /storage
for f in *; do
  info=$(qemu-img info --output=json -U -- "$f" 2>/dev/null | tr -d '\n')
  need=$(qemu-img measure --output=json -O qcow2 -l snapshot.name=final -- "$f" 2>/dev/null |
    tr -d '\n')
  printf '%s\t%s\t%s\t%s\n' "$f" "$(stat -c %s -- "$f")" "$info" "$need"
done
"""


def _disks(client: docker.DockerClient, image: str) -> dict[str, dict[str, Any]]:
    """The qcow2 disks in the image's /storage: name -> bytes, snapshots, measure."""
    out = client.containers.run(
        image,
        ["-c", LIST_DISKS],
        entrypoint="/bin/bash",
        remove=True,
        labels=L.owner_labels("test", None),
    ).decode()
    disks = {}
    for line in out.splitlines():
        name, size, info, need = [*line.split("\t"), "", "", ""][:4]
        if not info or json.loads(info).get("format") != "qcow2":
            continue
        disks[name] = {
            "bytes": int(size),
            "snapshots": json.loads(info).get("snapshots", []),
            "required": json.loads(need)["required"] if need else None,
        }
    return disks


@pytest.fixture(scope="module")
def final(builds: Builds) -> BuildRecord:
    record = builds.build(executor="inline")
    assert record.status == "ok" and record.image, record
    return record


def test_final_image_holds_only_what_restoring_final_needs(
    client: docker.DockerClient, final: BuildRecord
) -> None:
    assert final.image
    disks = _disks(client, final.image)
    assert disks, "no qcow2 disk in /storage"
    names = {name: [s["name"] for s in d["snapshots"]] for name, d in disks.items()}
    assert all(listed == ["final"] for listed in names.values()), names
    states = [s["vm-state-size"] for d in disks.values() for s in d["snapshots"]]
    assert len([s for s in states if s > 0]) == 1, states  # one VM state, on one disk
    # What restoring `final` needs: the disks' contents at `final` as qcow2 (qemu-img measure)
    # and final's VM state. With start-ready's state still in the boot disk (as large as
    # final's), the disks would hold about twice that.
    needed = sum(d["required"] for d in disks.values()) + max(states)
    held = sum(d["bytes"] for d in disks.values())
    print(f"disks hold {held} bytes; restoring final needs {needed}: {held / needed:.3f}x")
    assert held <= 1.05 * needed + len(disks) * 2**20, (held, needed, disks)


def test_the_start_ready_checkpoint_keeps_its_snapshot(
    client: docker.DockerClient, final: BuildRecord
) -> None:
    """A build resumes from start-ready: its checkpoint image keeps the snapshot and its state."""
    checkpoints = find_images(
        client, {L.KIND: "checkpoint", L.STAGE: "start-ready", L.TARGET: final.target}
    )
    assert checkpoints, "no start-ready checkpoint image on the engine"
    disks = _disks(client, checkpoints[0].id)  # the newest
    listed = [(s["name"], s["vm-state-size"] > 0) for d in disks.values() for s in d["snapshots"]]
    assert ("start-ready", True) in listed, listed
    assert all(name == "start-ready" for name, _ in listed), listed
