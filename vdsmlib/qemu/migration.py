"""Checkpoints as a migration stream in a file: saved over QMP, restored with ``-incoming``.

Example::

    async with QmpSession(socket_path) as qmp:
        saved = await migrate_to_file(qmp, state_path("final"), timeout=600)
    # a later QEMU with the same machine and disks restores it:
    #   ARGUMENTS="-incoming file:/storage/final.state"

Why this format and not savevm in qcow2: restoring a 2 GB guest to its first login took 3.8 s
from a file against 22.4 s with ``-loadvm`` (benchmarks/checkpoint_formats.py; same sizes), and
the disks hold no internal snapshot, so the final image carries no other checkpoint's state.

Why the VM is left running when the migration starts: the stream records the source's run
state (QEMU 10 ``migration/global_state.c``) and a VM restored with ``-incoming`` (no ``-S``)
runs after the load only when the source ran; a source paused first restores paused, and the
final image has no client to send ``cont``. QEMU stops the VM itself when the migration
completes (flushing the disks at that moment), so the disks and the stream show the same
instant. A high bandwidth and downtime limit make the copy converge in one or two passes.

A failed load makes QEMU exit (``load of migration failed: ...`` on its stderr); a missing file
is refused at start (``Could not open '...'``). :func:`incoming_failure` finds either in a log.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from vdsmlib.qemu.errors import MigrationError, QmpError
from vdsmlib.qemu.qmp import QmpSession

__all__ = [
    "STATE_DIR",
    "STATE_MAGIC",
    "STATE_SUFFIX",
    "SavedState",
    "incoming_argument",
    "incoming_failure",
    "migrate_to_file",
    "state_path",
    "wait_incoming",
]

logger = logging.getLogger(__name__)

#: where a checkpoint's state file lives in the container: virtual-dsm's storage folder, which
#: the build base keeps out of any volume, so ``docker commit`` captures it with the disks
STATE_DIR = "/storage"
#: one file per checkpoint name: a checkpoint committed over an earlier one keeps both layers'
STATE_SUFFIX = ".state"
#: the first bytes of every QEMU migration stream (migration/savevm.h: QEMU_VM_FILE_MAGIC "QEVM"
#: and QEMU_VM_FILE_VERSION 3)
STATE_MAGIC = bytes.fromhex("5145564d00000003")

# The name ends up in a path inside virtual-dsm's ARGUMENTS, which its shell word-splits.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,127}")
#: bytes per second the migration may use: the file, not a network, is the limit
_BANDWIDTH = 8 << 30
#: milliseconds the VM may stay stopped at the end; nobody waits on a checkpoint's guest
_DOWNTIME_MS = 10_000
_POLL = 0.2
_PROGRESS_EVERY = 15.0


@dataclass(frozen=True)
class SavedState:
    """A completed migration to a file: where, how many bytes QEMU wrote, how long it took."""

    path: str
    size: int
    seconds: float
    vm_status: str


def state_path(name: str, directory: str = STATE_DIR) -> str:
    """The state file of checkpoint ``name`` in the container (``/storage/<name>.state``)."""
    if not _NAME.fullmatch(name):
        raise MigrationError(
            f"invalid checkpoint name {name!r}: use a letter followed by letters, digits, "
            "'.', '_' or '-' (it becomes part of a shell-split -incoming argument)"
        )
    return f"{directory.rstrip('/')}/{name}{STATE_SUFFIX}"


def incoming_argument(name: str) -> str:
    """QEMU's argument that restores checkpoint ``name`` at start: ``-incoming file:<path>``."""
    return f"-incoming file:{state_path(name)}"


async def migrate_to_file(
    qmp: QmpSession, path: str, *, timeout: float = 600.0, progress_every: float = _PROGRESS_EVERY
) -> SavedState:
    """Migrate the VM (RAM and device state) into ``path`` in QEMU's file system; wait for it.

    The VM should be running (see the module's docstring); QEMU stops it when the migration
    completes and it stays stopped (``postmigrate``): quit QEMU next. Logs progress every
    ``progress_every`` seconds; raises :class:`MigrationError` with QEMU's error text when the
    migration fails, and cancels it when it takes longer than ``timeout``.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await qmp.execute(
            "migrate-set-parameters",
            {"max-bandwidth": _BANDWIDTH, "downtime-limit": _DOWNTIME_MS},
        )
        await qmp.execute("migrate", {"uri": f"file:{path}"})
    except QmpError as err:
        raise MigrationError(f"QEMU refused to migrate into {path}: {err}") from err
    info: dict[str, Any] = {}
    reported = started
    while True:
        info = await qmp.execute("query-migrate")
        status = info.get("status", "none")
        now = loop.time()
        if status == "completed":
            break
        if status in ("failed", "cancelled"):
            why = info.get("error-desc") or "QEMU gave no reason"
            raise MigrationError(f"migrating into {path} {status}: {why}")
        if now - started > timeout:
            await qmp.execute("migrate_cancel")
            raise MigrationError(
                f"migrating into {path} did not complete within {timeout:g} s ({_progress(info)});"
                " cancelled. Allow more time for large guests (params timeouts.savevm)"
            )
        if now - reported >= progress_every:
            reported = now
            logger.info("migrating into %s: %s, %.0f s", path, _progress(info), now - started)
        await asyncio.sleep(_POLL)
    vm_status = await qmp.status()
    ram = info.get("ram") or {}
    seconds = loop.time() - started
    logger.info(
        "migrated into %s in %.2f s: %.1f MiB written; VM %s",
        path,
        seconds,
        int(ram.get("transferred", 0)) / 2**20,
        vm_status,
    )
    return SavedState(path, int(ram.get("transferred", 0)), seconds, vm_status)


async def wait_incoming(qmp: QmpSession, *, timeout: float) -> str:
    """Wait until a VM started with ``-incoming`` has loaded its state; returns its run state.

    Raises :class:`MigrationError` when the load failed (QEMU kept running: ``exit-on-error``
    off) or did not end within ``timeout``; :class:`QmpError` when QEMU went away (a failed
    load ends QEMU by default).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        info = await qmp.execute("query-migrate")
        status = info.get("status", "none")
        if status == "completed":
            return await qmp.status()
        if status in ("failed", "cancelled"):
            why = info.get("error-desc") or "QEMU gave no reason"
            raise MigrationError(f"the incoming migration {status}: {why}")
        if status == "none" and await qmp.status() != "inmigrate":
            return await qmp.status()  # started without -incoming: nothing to wait for
        if loop.time() > deadline:
            raise MigrationError(
                f"the incoming migration did not complete within {timeout:g} s ({status})"
            )
        await asyncio.sleep(_POLL)


def incoming_failure(log: str) -> str | None:
    """The line of a VM container's ``log`` saying that QEMU's incoming migration failed.

    QEMU 10 ends a failed load with ``load of migration failed: <errno text>`` after the line
    saying where (``error while loading state section id 1(ram)``, ``Unknown combination of
    migration flags``), and refuses a missing file at start with ``-incoming file:<path>:
    Could not open '<path>': ...``. virtual-dsm prefixes its own lines with ``ERROR: ``.
    """
    lines = [
        line.strip().removeprefix("\u276f ").removeprefix("ERROR: ") for line in log.splitlines()
    ]
    for index, line in enumerate(lines):
        if "load of migration failed" in line or ("-incoming" in line and "Could not" in line):
            cause = [
                x
                for x in lines[max(0, index - 3) : index]
                if x.startswith("qemu-system") and x != line
            ][-1:]
            return "; ".join([*cause, line])
    return None


def _progress(info: dict[str, Any]) -> str:
    ram = info.get("ram") or {}
    done, total = int(ram.get("transferred", 0)), int(ram.get("total", 0))
    return f"{done / 2**20:.0f} MiB written, {int(ram.get('remaining', 0)) / 2**20:.0f} MiB of " + (
        f"{total / 2**20:.0f} MiB RAM left"
    )
