"""Errors raised by vdsmlib.qemu.

::

    VdsmError
     +-- QmpError           QMP connection and command failures (vdsmlib.qemu.qmp)
     |    +-- SnapshotError snapshot save/load/delete failed or did not read back
     |    +-- MigrationError a migration to or from a state file failed or did not complete
     +-- QemuToolError      a host binary (qemu-img, qemu-system-x86_64) is missing or failed

Errors of the ``qemu.qmp`` package are wrapped (the original is ``__cause__``);
``asyncio.CancelledError`` and ``KeyboardInterrupt`` are never wrapped.
"""

from __future__ import annotations

from vdsmlib.errors import VdsmError

__all__ = ["MigrationError", "QemuToolError", "QmpError", "SnapshotError"]


class QmpError(VdsmError):
    """A QMP connection could not be made, was lost, or a command failed.

    ``error_class`` is QEMU's error class (e.g. ``"GenericError"``,
    ``"CommandNotFound"``) when QEMU itself rejected a command, else ``None``.
    """

    def __init__(self, message: str, *, error_class: str | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class


class SnapshotError(QmpError):
    """A snapshot could not be saved, loaded or deleted, or did not read back.

    ``snapshot`` names the snapshot; ``job_error`` is QEMU's own error text
    for a failed snapshot job, when there was one.
    """

    def __init__(self, message: str, *, snapshot: str, job_error: str | None = None) -> None:
        super().__init__(message)
        self.snapshot = snapshot
        self.job_error = job_error


class MigrationError(QmpError):
    """A migration into a state file (a checkpoint) or from one (a restore) failed, was
    refused, or did not complete in time; the message carries QEMU's own error text."""


class QemuToolError(VdsmError):
    """A host QEMU binary is missing, failed, or printed something unexpected."""
