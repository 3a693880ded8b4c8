"""What the final image's disks hold: the ``final`` snapshot and what restoring it needs, nothing
of ``start-ready`` (its snapshot and VM state stay in the start-ready checkpoint image).

The image comes from ``builds.build()``: after ``test_build.py``'s build in the same session it
is a no-op; alone it resumes from the newest matching checkpoint on the engine (or builds). The
disks are read by the image's own ``qemu-img`` (the QEMU that wrote them).
"""

from __future__ import annotations

import docker
import pytest

from tests.integration.conftest import Builds
from vdsmlib.checkpoints.footprint import disk_footprints
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images
from vdsmlib.pipeline import BuildRecord

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def final(builds: Builds) -> BuildRecord:
    record = builds.build(executor="inline")
    assert record.status == "ok" and record.image, record
    return record


def test_final_image_holds_only_what_restoring_final_needs(
    client: docker.DockerClient, final: BuildRecord
) -> None:
    assert final.image
    disks = disk_footprints(client, final.image, "final")
    assert disks, "no qcow2 disk in /storage"
    names = {name: [s.name for s in d.snapshots] for name, d in disks.items()}
    assert all(listed == ["final"] for listed in names.values()), names
    states = [s.vm_state_size for d in disks.values() for s in d.snapshots]
    assert len([s for s in states if s > 0]) == 1, states  # one VM state, on one disk
    # What restoring `final` needs: the disks' contents at `final` as qcow2 (qemu-img measure)
    # and final's VM state. With start-ready's state still in the boot disk (as large as
    # final's), the disks would hold about twice that.
    needed = sum(d.required or 0 for d in disks.values()) + max(states)
    held = sum(d.bytes for d in disks.values())
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
    disks = disk_footprints(client, checkpoints[0].id, "start-ready")  # the newest
    listed = [(s.name, s.vm_state_size > 0) for d in disks.values() for s in d.snapshots]
    assert ("start-ready", True) in listed, listed
    assert all(name == "start-ready" for name, _ in listed), listed
