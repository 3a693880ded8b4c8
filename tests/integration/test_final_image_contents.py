"""What the final image holds: the disks at ``final`` and ``final.state``, nothing of
``start-ready`` (its state file stays in the start-ready checkpoint image).

The checkpoint format is a migration stream in a file beside disks without internal snapshots
(vdsmlib.qemu.migration), so "nothing of start-ready" means: no state file but final's in the
storage folder, no internal snapshot on any disk, and the disks no bigger than what their
contents need (``qemu-img measure``).

The image comes from ``builds.build()``: after ``test_build.py``'s build in the same session it
is a no-op; alone it resumes from the newest matching checkpoint on the engine (or builds). The
disks are read by the image's own ``qemu-img`` (the QEMU that wrote them).
"""

from __future__ import annotations

import docker
import pytest

from tests.integration.conftest import Builds
from vdsmlib.checkpoints.footprint import disk_footprints, storage_files
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images
from vdsmlib.pipeline import BuildRecord
from vdsmlib.qemu.migration import STATE_SUFFIX

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
    files = storage_files(client, final.image)
    states = {name: size for name, size in files.items() if name.endswith(STATE_SUFFIX)}
    assert list(states) == ["final.state"], files  # nothing of start-ready
    assert states["final.state"] > 1 << 20, states  # a VM state, not a stub
    disks = disk_footprints(client, final.image, "final")
    assert disks, "no qcow2 disk in /storage"
    snapshots = {name: [s.name for s in d.snapshots] for name, d in disks.items()}
    assert all(listed == [] for listed in snapshots.values()), snapshots
    # What restoring `final` needs: the disks' contents as qcow2 (qemu-img measure) and
    # final.state. A disk that kept another checkpoint's data (an internal snapshot, clusters
    # of a deleted one) would hold more.
    needed = sum(d.required or 0 for d in disks.values()) + states["final.state"]
    held = sum(d.bytes for d in disks.values()) + sum(states.values())
    print(f"storage holds {held} bytes; restoring final needs {needed}: {held / needed:.3f}x")
    assert held <= 1.05 * needed + len(disks) * 2**20, (held, needed, disks)


def test_the_start_ready_checkpoint_keeps_its_state_file(
    client: docker.DockerClient, final: BuildRecord
) -> None:
    """A build resumes from start-ready: its checkpoint image keeps its state file, and no
    other; its disks list no internal snapshot."""
    from vdsmlib.checkpoints.fingerprints import compute
    from vdsmlib.params import load_params
    from vdsmlib.pipeline.base import look_up_base

    params = load_params("sim")
    base = look_up_base(client, params)
    assert not isinstance(base, str), base
    # the checkpoint this code makes (an older build's, of another format, has another one)
    fingerprint = compute(params, base)["start-ready"]
    checkpoints = find_images(
        client, {L.KIND: "checkpoint", L.STAGE: "start-ready", L.FINGERPRINT: fingerprint}
    )
    assert checkpoints, "no start-ready checkpoint of this code on the engine"
    newest = checkpoints[0].id
    files = storage_files(client, newest)
    states = [name for name in files if name.endswith(STATE_SUFFIX)]
    assert states == ["start-ready.state"] and files["start-ready.state"] > 1 << 20, files
    disks = disk_footprints(client, newest, "start-ready")
    assert all(not d.snapshots for d in disks.values()), disks
