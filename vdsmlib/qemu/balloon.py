"""Give the guest's free and cache memory back before a checkpoint, through virtio-balloon.

A checkpoint's VM state holds every guest RAM page that is not zero, free and page-cache pages
included: memory the guest once touched and freed still carries its old bytes. virtual-dsm
always attaches a ``virtio-balloon-pci`` device (its ``config.sh``). Inflating the balloon makes
the guest's driver take pages from the guest (reclaiming caches to find them) and hand them to
QEMU, which discards them (they read as zero afterwards); deflating gives them back to the
guest as free pages that are still zero. The migration stream (savevm or a state file) stores
a zero page as a flag, not 4 KiB, so the state shrinks by what the guest gave up.

The balloon is deflated before the checkpoint is taken, so a restored guest has all its RAM
and nothing needs to be done after a restore. The guest driver's allocations do not retry
(Linux ``balloon_page_alloc``: ``__GFP_NORETRY``), so the guest stops giving pages rather than
running out of memory; :func:`reclaim_guest_memory` stops inflating when the balloon stops
growing, and leaves the guest what its own statistics say it uses plus a margin.

A guest without a balloon driver (QMP ``query-balloon`` answers ``DeviceNotActive``) is left
as it is: the result says so.

Example::

    async with QmpSession(socket_path) as qmp:
        result = await reclaim_guest_memory(qmp)
        print(result.summary())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from vdsmlib.qemu.errors import QmpError
from vdsmlib.qemu.qmp import QmpSession

__all__ = ["BalloonResult", "guest_floor", "reclaim_guest_memory"]

log = logging.getLogger(__name__)

_MiB = 2**20


@dataclass(frozen=True)
class BalloonResult:
    """What :func:`reclaim_guest_memory` did: the guest's RAM as the balloon saw it."""

    active: bool
    ram: int = 0
    lowest: int = 0
    restored: int = 0
    seconds: float = 0.0

    @property
    def reclaimed(self) -> int:
        """Bytes the guest gave up while the balloon was inflated (now zero pages)."""
        return self.ram - self.lowest if self.active else 0

    def summary(self) -> str:
        if not self.active:
            return "no balloon driver in the guest: memory left as it is"
        return (
            f"guest gave {self.reclaimed // _MiB} MiB of {self.ram // _MiB} MiB to the balloon "
            f"(down to {self.lowest // _MiB} MiB) and has {self.restored // _MiB} MiB again, "
            f"in {self.seconds:.1f} s"
        )


async def _actual(qmp: QmpSession) -> int:
    return int((await qmp.execute("query-balloon", timeout=10))["actual"])


async def _settle(qmp: QmpSession, *, poll: float, still: float, deadline: float) -> int:
    """Poll the balloon until its size has not changed for ``still`` seconds (or the deadline)."""
    last = await _actual(qmp)
    since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(poll)
        now = await _actual(qmp)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= still:
            break
    return last


def guest_floor(ram: int, stats: dict[str, int] | None) -> int:
    """The memory to leave the guest while the balloon is inflated.

    From the guest's own statistics (virtio-balloon's, in bytes; -1 where the guest does not
    report one): what it uses (total less free and page cache) plus a margin of an eighth of
    its RAM, at least 64 MiB. Without statistics, half of the RAM.

    >>> guest_floor(512 * _MiB, {"stat-total-memory": 480 * _MiB,
    ...     "stat-free-memory": 300 * _MiB, "stat-disk-caches": 60 * _MiB}) // _MiB
    184
    >>> guest_floor(512 * _MiB, None) // _MiB
    256
    """
    margin = max(64 * _MiB, ram // 8)
    total = (stats or {}).get("stat-total-memory", -1)
    free = (stats or {}).get("stat-free-memory", -1)
    if total <= 0 or free < 0:
        return ram // 2
    caches = max((stats or {}).get("stat-disk-caches", -1), 0)
    used = max(total - free - caches, 0)
    return min(ram, used + margin)


async def _guest_stats(qmp: QmpSession, *, poll: float, deadline: float) -> dict[str, int] | None:
    """The balloon driver's memory statistics, or None when the guest reports none."""
    path = "/machine/peripheral/balloon0"
    try:
        await qmp.execute(
            "qom-set",
            {"path": path, "property": "guest-stats-polling-interval", "value": 1},
            timeout=10,
        )
        while time.monotonic() < deadline:
            got = await qmp.execute(
                "qom-get", {"path": path, "property": "guest-stats"}, timeout=10
            )
            if got.get("last-update"):
                return {str(k): int(v) for k, v in got.get("stats", {}).items()}
            await asyncio.sleep(poll)
    except QmpError as err:
        log.info("no memory statistics from the balloon device (%s)", err)
        return None
    finally:
        with contextlib.suppress(QmpError):
            await qmp.execute(
                "qom-set",
                {"path": path, "property": "guest-stats-polling-interval", "value": 0},
                timeout=10,
            )
    return None


async def reclaim_guest_memory(
    qmp: QmpSession,
    *,
    timeout: float = 60.0,
    poll: float = 0.2,
    still: float = 1.0,
) -> BalloonResult:
    """Inflate the balloon until the guest gives no more (leaving it what it uses plus a margin:
    :func:`guest_floor`), then deflate it again; the pages the guest gave up are zero afterwards.

    The VM must be running (the guest's driver does the work). Raises :class:`QmpError` when
    QEMU refuses the balloon commands for another reason than a missing guest driver, or when
    the balloon does not return to the guest's whole RAM within ``timeout``.
    """
    started = time.monotonic()
    try:
        ram = await _actual(qmp)
    except QmpError as err:
        if err.error_class in ("DeviceNotActive", "KVMMissingCap"):
            log.info("no balloon driver active in the guest (%s): memory left as it is", err)
            return BalloonResult(active=False)
        raise
    deadline = started + timeout
    stats = await _guest_stats(qmp, poll=poll, deadline=min(deadline, started + 5))
    target = guest_floor(ram, stats)
    await qmp.execute("balloon", {"value": target}, timeout=10)
    lowest = await _settle(qmp, poll=poll, still=still, deadline=deadline)
    log.info("balloon inflated: guest down to %d MiB of %d MiB", lowest // _MiB, ram // _MiB)
    await qmp.execute("balloon", {"value": ram}, timeout=10)
    restored = lowest
    deflating = time.monotonic()
    while time.monotonic() < deflating + timeout:
        restored = await _actual(qmp)
        if restored >= ram:
            break
        await asyncio.sleep(poll)
    else:
        raise QmpError(
            f"the guest's balloon did not deflate back to {ram // _MiB} MiB within "
            f"{timeout:g} s (it holds {restored // _MiB} MiB): the guest would run short of "
            "memory after a restore; see the VM's console log"
        )
    return BalloonResult(
        active=True,
        ram=ram,
        lowest=lowest,
        restored=restored,
        seconds=time.monotonic() - started,
    )
