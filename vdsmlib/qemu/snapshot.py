"""QEMU internal snapshots (savevm / loadvm) over QMP, read back before they count.

Example::

    async with QmpSession(socket_path) as qmp:
        info = await save_snapshot(qmp, "final", timeout=300)
        print(info.node, info.vm_state_size)

Why the job commands (``snapshot-save``, ``snapshot-load``, ``snapshot-delete``,
QEMU >= 6.0) and not HMP ``savevm NAME``: HMP reports failure as free text in
an otherwise successful reply, so the caller must grep it; a job reports a
failure as the ``error`` of the concluded job in query-jobs. The jobs need the
block node names, which query-block gives. Like ``savevm``, every writable
disk takes part (so one raw writable disk fails the save, as it would fail a
later ``-loadvm``) and the VM state goes into the first writable qcow2 disk.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

from vdsmlib.qemu.errors import QmpError, SnapshotError
from vdsmlib.qemu.image import SnapshotInfo
from vdsmlib.qemu.qmp import BlockDevice, QmpSession

__all__ = [
    "delete_snapshot",
    "load_snapshot",
    "other_snapshots",
    "save_snapshot",
    "verify_snapshot",
]

logger = logging.getLogger(__name__)

# The name ends up in `-loadvm NAME` inside virtual-dsm's ARGUMENTS, which the
# container's shell word-splits; a purely numeric name would also match
# snapshot *ids*. Both are avoided by a plain identifier.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,127}")

_QCOW2_HINT = (
    "Every writable disk must support snapshots: boot and system disks must be qcow2 "
    "(virtual-dsm attaches them raw; convert them with vdsmlib.qemu.convert_to_qcow2 "
    "and attach them as qcow2)."
)


async def save_snapshot(
    qmp: QmpSession, name: str, *, timeout: float = 600.0, replace: bool = False
) -> SnapshotInfo:
    """Save the VM (RAM and all writable disks) as snapshot ``name`` and read it back.

    Returns the snapshot on the disk that holds the VM state. A running VM is
    paused during the save and resumes afterwards; it is an error if it does
    not. An existing snapshot of that name is an error unless ``replace``.
    """
    _check_name(name)
    devices = await qmp.block_devices()
    existing = [d.name for d in devices if _find(d, name) is not None]
    if existing and not replace:
        raise SnapshotError(
            f"snapshot {name!r} already exists on {', '.join(existing)}; "
            "pass replace=True or delete it first",
            snapshot=name,
        )
    if existing:
        await delete_snapshot(qmp, name, timeout=timeout)
    writable = [d for d in devices if not d.read_only]
    vmstate = next((d for d in writable if d.format == "qcow2"), None)
    if vmstate is None:
        raise SnapshotError(
            f"cannot save snapshot {name!r}: no writable qcow2 disk to hold the VM state "
            f"(disks: {_describe(devices)}). {_QCOW2_HINT}",
            snapshot=name,
        )
    before = await qmp.status()
    started = asyncio.get_running_loop().time()
    error = await _run_job(
        qmp,
        "snapshot-save",
        name,
        {"tag": name, "vmstate": vmstate.node_name, "devices": [d.node_name for d in writable]},
        timeout=timeout,
    )
    after = await qmp.status()
    if error is not None:
        hint = _QCOW2_HINT if "support snapshots" in error else "See QEMU's message above."
        raise SnapshotError(
            f"saving snapshot {name!r} failed: {error} (disks: {_describe(devices)}; "
            f"VM is {after}). {hint}",
            snapshot=name,
            job_error=error,
        )
    info = await verify_snapshot(qmp, name)
    seconds = asyncio.get_running_loop().time() - started
    logger.info(
        "saved snapshot %r in %.2f s: %.1f MiB VM state on %s; VM %s",
        name,
        seconds,
        info.vm_state_size / 2**20,
        info.node,
        after,
    )
    if before == "running" and after != "running":
        raise SnapshotError(
            f"snapshot {name!r} was saved, but the VM did not resume: it is {after}, "
            "it was running before. Resume it with the QMP command 'cont'.",
            snapshot=name,
        )
    return info


async def verify_snapshot(qmp: QmpSession, name: str) -> SnapshotInfo:
    """Read snapshot ``name`` back from query-block; return the one holding the VM state.

    It must be listed on every writable disk, and one of them must hold VM
    state (vm-state-size > 0), or ``-loadvm`` could not restore it.
    """
    devices = await qmp.block_devices()
    writable = [d for d in devices if not d.read_only]
    found = [s for d in writable if (s := _find(d, name)) is not None]
    problems = []
    if not writable:
        problems.append("there is no writable disk")
    missing = [d.name for d in writable if _find(d, name) is None]
    if missing:
        problems.append(f"it is missing on {', '.join(missing)}")
    with_state = [s for s in found if s.vm_state_size > 0]
    if found and not with_state:
        problems.append("no disk holds its VM state (vm-state-size is 0 everywhere)")
    if problems:
        listed = "; ".join(f"{d.name}: {[s.name for s in d.snapshots]}" for d in devices)
        raise SnapshotError(
            f"snapshot {name!r} did not read back: {'; '.join(problems)} "
            f"(snapshots per disk: {listed or 'no disks'})",
            snapshot=name,
        )
    return with_state[0]


async def load_snapshot(qmp: QmpSession, name: str, *, timeout: float = 600.0) -> None:
    """Restore the VM to snapshot ``name`` (``loadvm``); a running VM keeps running.

    A failed load leaves the VM stopped (QEMU's ``restore-vm`` state); the
    error says so.
    """
    info = await verify_snapshot(qmp, name)
    writable = [d for d in await qmp.block_devices() if not d.read_only]
    error = await _run_job(
        qmp,
        "snapshot-load",
        name,
        {"tag": name, "vmstate": info.node or "", "devices": [d.node_name for d in writable]},
        timeout=timeout,
    )
    status = await qmp.status()
    if error is not None:
        raise SnapshotError(
            f"loading snapshot {name!r} failed: {error}. The VM is {status}; "
            "load another snapshot or restart QEMU.",
            snapshot=name,
            job_error=error,
        )
    logger.info("loaded snapshot %r; VM %s", name, status)


async def delete_snapshot(
    qmp: QmpSession, name: str, *, timeout: float = 120.0, missing_ok: bool = False
) -> None:
    """Delete snapshot ``name`` from every writable disk that lists it."""
    nodes = [
        d.node_name
        for d in await qmp.block_devices()
        if not d.read_only and _find(d, name) is not None
    ]
    if not nodes:
        if missing_ok:
            return
        raise SnapshotError(f"cannot delete snapshot {name!r}: no disk lists it", snapshot=name)
    error = await _run_job(
        qmp, "snapshot-delete", name, {"tag": name, "devices": nodes}, timeout=timeout
    )
    if error is not None:
        raise SnapshotError(
            f"deleting snapshot {name!r} failed: {error}", snapshot=name, job_error=error
        )
    logger.info("deleted snapshot %r from %s", name, ", ".join(nodes))


async def other_snapshots(qmp: QmpSession, name: str) -> list[str]:
    """The names of the snapshots on the VM's writable disks other than ``name``, sorted."""
    return sorted(
        {s.name for d in await qmp.block_devices() if not d.read_only for s in d.snapshots} - {name}
    )


async def _run_job(
    qmp: QmpSession, command: str, name: str, args: dict[str, object], *, timeout: float
) -> str | None:
    """Run a snapshot job to its end, dismiss it, and return its error text (None if none)."""
    job_id = f"vdsm-{command}-{uuid.uuid4().hex[:8]}"
    status = "requested, no reply yet"
    try:
        # The deadline covers every command too: while a save writes the VM
        # state, QEMU's main loop (and so its monitor) may not answer at all.
        async with asyncio.timeout(timeout):
            # Listen before starting the job: its events may arrive before the reply.
            with qmp.listen("JOB_STATUS_CHANGE") as listener:
                try:
                    await qmp.execute(command, {"job-id": job_id, **args})
                except QmpError as err:
                    if err.error_class is None:
                        raise  # not a refusal: the connection is gone; handled below
                    needs = " (needs QEMU >= 6.0)" if err.error_class == "CommandNotFound" else ""
                    raise SnapshotError(
                        f"QEMU refused {command} for snapshot {name!r}{needs}: {err}",
                        snapshot=name,
                    ) from err
                status = "started"
                while status != "concluded":
                    event = await qmp.next_event(listener, timeout=None)
                    if event is not None and event["data"]["id"] == job_id:
                        status = event["data"]["status"]
                        logger.debug("job %s: %s", job_id, status)
            jobs = await qmp.execute("query-jobs")
            job: dict[str, Any] = next((j for j in jobs if j["id"] == job_id), {})
            await qmp.execute("job-dismiss", {"id": job_id})
    except SnapshotError:
        raise
    except QmpError as err:
        raise SnapshotError(
            f"{command} of snapshot {name!r} failed (job {job_id}: {status}): {err}",
            snapshot=name,
        ) from err
    except TimeoutError as err:
        raise SnapshotError(
            f"{command} of snapshot {name!r} did not finish within {timeout:g} s "
            f"(job {job_id}: {status}); a save keeps the VM paused until it ends. "
            "Allow more time for large guests or slow disks.",
            snapshot=name,
        ) from err
    error = job.get("error")
    return None if error is None else str(error)


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise SnapshotError(
            f"invalid snapshot name {name!r}: use a letter followed by letters, digits, "
            "'.', '_' or '-' (it becomes part of a shell-split -loadvm argument)",
            snapshot=name,
        )


def _find(device: BlockDevice, name: str) -> SnapshotInfo | None:
    return next((s for s in device.snapshots if s.name == name), None)


def _describe(devices: Sequence[BlockDevice]) -> str:
    parts = [f"{d.name} ({d.format}{', read-only' if d.read_only else ''})" for d in devices]
    return ", ".join(parts) or "none"
