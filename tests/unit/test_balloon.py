"""The balloon step before the final checkpoint, against a double of QEMU's balloon device.

The double follows QMP's documented behaviour (qapi/machine.json: ``balloon`` sets a target,
``query-balloon`` reports ``actual``; without an active guest driver both fail with
``DeviceNotActive``): the guest gives pages towards the target at a rate and never below what it
can spare, and takes them back when the target rises.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vdsmlib.qemu.balloon import guest_floor, reclaim_guest_memory
from vdsmlib.qemu.errors import QmpError

MiB = 2**20


class GuestBalloon:
    """QMP's balloon commands on a guest of ``ram`` bytes that can spare down to ``spare``."""

    def __init__(
        self, ram: int, spare: int, *, driver: bool = True, stats: dict[str, int] | None = None
    ) -> None:
        self.ram, self.spare, self.driver, self.stats = ram, spare, driver, stats
        self.actual = ram
        self.target = ram
        self.lowest = ram
        self.commands: list[str] = []

    def _step(self) -> None:
        goal = max(self.target, self.spare)
        move = 32 * MiB
        if self.actual > goal:
            self.actual = max(goal, self.actual - move)
        elif self.actual < self.target:
            self.actual = min(self.target, self.actual + move)
        self.lowest = min(self.lowest, self.actual)

    async def execute(
        self, cmd: str, args: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        self.commands.append(cmd)
        if not self.driver and cmd in ("balloon", "query-balloon"):
            raise QmpError("No balloon device has been activated", error_class="DeviceNotActive")
        if cmd == "query-balloon":
            self._step()
            return {"actual": self.actual}
        if cmd == "balloon":
            self.target = int((args or {})["value"])
            return {}
        if cmd == "qom-set":
            return {}
        if cmd == "qom-get":
            if self.stats is None:
                raise QmpError("Property 'guest-stats' not found", error_class="GenericError")
            return {"stats": self.stats, "last-update": 1}
        raise AssertionError(cmd)


def run(balloon: GuestBalloon, timeout: float = 5) -> Any:
    return asyncio.run(
        reclaim_guest_memory(balloon, poll=0.001, still=0.01, timeout=timeout)  # type: ignore[arg-type]
    )


def test_the_guest_gives_what_it_can_spare_and_gets_all_of_it_back() -> None:
    stats = {
        "stat-total-memory": 480 * MiB,
        "stat-free-memory": 300 * MiB,
        "stat-disk-caches": 60 * MiB,
    }
    balloon = GuestBalloon(512 * MiB, spare=200 * MiB, stats=stats)
    result = run(balloon)
    assert result.active
    # the target left the guest what it uses (120 MiB) plus 64 MiB; it could spare only 200 MiB
    assert balloon.lowest == 200 * MiB == result.lowest
    assert result.reclaimed == 312 * MiB
    assert balloon.actual == 512 * MiB == result.restored
    assert "312 MiB of 512 MiB" in result.summary()


def test_the_target_never_goes_below_what_the_guest_uses_plus_a_margin() -> None:
    stats = {"stat-total-memory": 480 * MiB, "stat-free-memory": 400 * MiB}
    balloon = GuestBalloon(512 * MiB, spare=16 * MiB, stats=stats)
    run(balloon)
    assert balloon.lowest == 80 * MiB + 64 * MiB


def test_without_statistics_half_the_ram_stays_with_the_guest() -> None:
    balloon = GuestBalloon(2048 * MiB, spare=100 * MiB, stats=None)
    result = run(balloon)
    assert result.lowest == 1024 * MiB
    assert result.restored == 2048 * MiB


def test_a_guest_without_a_balloon_driver_is_left_alone() -> None:
    balloon = GuestBalloon(512 * MiB, spare=0, driver=False)
    result = run(balloon)
    assert not result.active and result.reclaimed == 0
    assert balloon.commands == ["query-balloon"]
    assert "no balloon driver" in result.summary()


def test_a_balloon_that_does_not_deflate_is_an_error() -> None:
    class Stuck(GuestBalloon):
        def _step(self) -> None:
            if self.target < self.actual:
                super()._step()

    with pytest.raises(QmpError, match="did not deflate back to 512 MiB"):
        run(Stuck(512 * MiB, spare=300 * MiB), timeout=0.3)


def test_the_floor_from_statistics() -> None:
    assert guest_floor(4096 * MiB, {"stat-total-memory": -1, "stat-free-memory": 5}) == 2048 * MiB
    # a big guest keeps an eighth of its RAM as margin
    used_1g = {"stat-total-memory": 4000 * MiB, "stat-free-memory": 3000 * MiB}
    assert guest_floor(4096 * MiB, used_1g) == 1000 * MiB + 512 * MiB
