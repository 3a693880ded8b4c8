"""QEMU: QMP sessions, snapshots (savevm/loadvm) and disk images.

Example::

    from vdsmlib.qemu import QmpSession, save_snapshot

    async with QmpSession("/storage/qmp.sock") as qmp:
        info = await save_snapshot(qmp, "final")
"""

from vdsmlib.qemu.errors import QemuToolError, QmpError, SnapshotError
from vdsmlib.qemu.image import (
    SnapshotInfo,
    convert_to_qcow2,
    qemu_img_info,
    qemu_version,
    snapshots_in,
)
from vdsmlib.qemu.qmp import Address, BlockDevice, QmpSession
from vdsmlib.qemu.snapshot import delete_snapshot, load_snapshot, save_snapshot, verify_snapshot

__all__ = [
    "Address",
    "BlockDevice",
    "QemuToolError",
    "QmpError",
    "QmpSession",
    "SnapshotError",
    "SnapshotInfo",
    "convert_to_qcow2",
    "delete_snapshot",
    "load_snapshot",
    "qemu_img_info",
    "qemu_version",
    "save_snapshot",
    "snapshots_in",
    "verify_snapshot",
]
