"""QEMU: QMP sessions, checkpoints as migration streams in files, internal snapshots
(savevm/loadvm) and disk images.

Example::

    from vdsmlib.qemu import QmpSession, migrate_to_file, state_path

    async with QmpSession("/vdsm-ci/qmp.sock") as qmp:
        saved = await migrate_to_file(qmp, state_path("final"))
"""

from vdsmlib.qemu.errors import MigrationError, QemuToolError, QmpError, SnapshotError
from vdsmlib.qemu.image import (
    SnapshotInfo,
    convert_to_qcow2,
    qemu_img_info,
    qemu_version,
    snapshots_in,
)
from vdsmlib.qemu.migration import (
    SavedState,
    incoming_argument,
    migrate_to_file,
    state_path,
    wait_incoming,
)
from vdsmlib.qemu.qmp import Address, BlockDevice, QmpSession
from vdsmlib.qemu.snapshot import delete_snapshot, load_snapshot, save_snapshot, verify_snapshot

__all__ = [
    "Address",
    "BlockDevice",
    "MigrationError",
    "QemuToolError",
    "QmpError",
    "QmpSession",
    "SavedState",
    "SnapshotError",
    "SnapshotInfo",
    "convert_to_qcow2",
    "delete_snapshot",
    "incoming_argument",
    "load_snapshot",
    "migrate_to_file",
    "qemu_img_info",
    "qemu_version",
    "save_snapshot",
    "snapshots_in",
    "state_path",
    "verify_snapshot",
    "wait_incoming",
]
