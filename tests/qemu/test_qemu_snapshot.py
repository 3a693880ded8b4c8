"""Snapshots (savevm/loadvm through the job API) against a real QEMU."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest

from vdsmlib.qemu import (
    QmpError,
    QmpSession,
    SnapshotError,
    delete_snapshot,
    load_snapshot,
    save_snapshot,
    snapshots_in,
    verify_snapshot,
)
from vdsmlib.qemu.snapshot import other_snapshots
from vdsmlib.readiness import NotReady, wait_for

pytestmark = pytest.mark.qemu


async def _ram_digest(qmp: QmpSession, path: Path) -> str:
    # The first 16 MiB of guest RAM: firmware code, data and stack live there.
    await qmp.execute("pmemsave", {"val": 0, "size": 16 * 2**20, "filename": str(path)})
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_save_running_vm_reads_back_everywhere(start_vm, make_disk) -> None:
    sys_disk, data_disk = make_disk("sys"), make_disk("data")
    cdrom = make_disk("cdrom", read_only=True)
    vm = start_vm(sys_disk, data_disk, cdrom)
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        info = await save_snapshot(qmp, "final", timeout=60)
        assert await qmp.status() == "running"
        # Read back through QMP as well as from the images, while QEMU holds them.
        assert (await verify_snapshot(qmp, "final")).vm_state_size == info.vm_state_size
        listed = {p.stem: snapshots_in(p) for p in (sys_disk.path, data_disk.path, cdrom.path)}
        nodes = {d.device: d.node_name for d in await qmp.block_devices()}
    assert info.name == "final"
    assert info.node == nodes["sys"]  # the VM state goes into the first writable qcow2 disk
    assert info.file == str(sys_disk.path)
    assert info.vm_state_size > 0
    assert [(s.name, s.vm_state_size) for s in listed["sys"]] == [("final", info.vm_state_size)]
    assert [(s.name, s.vm_state_size) for s in listed["data"]] == [("final", 0)]
    assert listed["cdrom"] == []  # read-only disks take no part


async def test_save_paused_vm_stays_paused(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys"), paused=True)
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        info = await save_snapshot(qmp, "start-ready", timeout=60)
        assert info.vm_state_size > 0
        assert await qmp.status() == "prelaunch"


async def test_loadvm_on_the_command_line_restores_the_saved_state(
    start_vm, make_disk, tmp_path: Path
) -> None:
    # The RAM of a VM that never ran: what a restore that restored nothing would show.
    fresh = start_vm(make_disk("other"), name="fresh", paused=True)
    async with QmpSession(fresh.socket, connect_timeout=10) as qmp:
        fresh_ram = await _ram_digest(qmp, tmp_path / "fresh.ram")
        await qmp.quit()

    disk = make_disk("sys")
    first = start_vm(disk, name="first")
    async with QmpSession(first.socket, connect_timeout=10) as qmp:

        async def firmware_ran(budget: float) -> None:
            if await _ram_digest(qmp, tmp_path / "first.ram") == fresh_ram:
                raise NotReady("guest RAM is still as a fresh VM's")

        await wait_for(firmware_ran, what="the firmware to write RAM", timeout=30, interval=0.1)
        await qmp.execute("stop")
        saved_ram = await _ram_digest(qmp, tmp_path / "saved.ram")
        await save_snapshot(qmp, "final", timeout=60)
        await qmp.quit()
    first.kill()
    assert saved_ram != fresh_ram

    restored = start_vm(disk, name="restored", paused=True, extra=["-loadvm", "final"])
    async with QmpSession(restored.socket, connect_timeout=10) as qmp:
        assert await _ram_digest(qmp, tmp_path / "restored.ram") == saved_ram
        await qmp.quit()

    running = start_vm(disk, name="running", extra=["-loadvm", "final"])
    async with QmpSession(running.socket, connect_timeout=10) as qmp:
        assert await qmp.status() == "running"


async def test_raw_writable_disk_fails_the_save(start_vm, make_disk) -> None:
    sys_disk, raw_disk = make_disk("sys"), make_disk("boot", fmt="raw")
    vm = start_vm(sys_disk, raw_disk)
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        with pytest.raises(SnapshotError) as caught:
            await save_snapshot(qmp, "final", timeout=60)
        assert await qmp.status() == "running"
        assert all(d.snapshots == () for d in await qmp.block_devices())
    message = str(caught.value)
    assert "'final'" in message
    assert "Device 'boot' is writable but does not support snapshots" in message
    assert "must be qcow2" in message
    assert caught.value.snapshot == "final"
    assert caught.value.job_error is not None
    assert snapshots_in(sys_disk.path) == []


async def test_no_writable_qcow2_disk_is_refused_before_starting(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("boot", fmt="raw"))
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        with pytest.raises(SnapshotError, match="no writable qcow2 disk"):
            await save_snapshot(qmp, "final")


async def test_verify_of_a_missing_name_fails(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys"), make_disk("data"))
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        await save_snapshot(qmp, "final", timeout=60)
        with pytest.raises(SnapshotError, match="'nope' did not read back: it is missing on sys"):
            await verify_snapshot(qmp, "nope")


async def test_replace_load_and_delete(start_vm, make_disk) -> None:
    disk = make_disk("sys")
    vm = start_vm(disk)
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        first = await save_snapshot(qmp, "final", timeout=60)
        with pytest.raises(SnapshotError, match="already exists on sys"):
            await save_snapshot(qmp, "final", timeout=60)
        second = await save_snapshot(qmp, "final", timeout=60, replace=True)
        assert second.date > first.date
        assert [s.name for s in snapshots_in(disk.path)] == ["final"]

        await load_snapshot(qmp, "final", timeout=60)
        assert await qmp.status() == "running"

        await delete_snapshot(qmp, "final")
        assert snapshots_in(disk.path) == []
        with pytest.raises(SnapshotError, match="did not read back"):
            await verify_snapshot(qmp, "final")
        with pytest.raises(SnapshotError, match="no disk lists it"):
            await delete_snapshot(qmp, "final")
        await delete_snapshot(qmp, "final", missing_ok=True)
        with pytest.raises(SnapshotError, match="did not read back"):
            await load_snapshot(qmp, "final")


@pytest.mark.parametrize("name", ["", "1", "has space", "-x", "a;b"])
async def test_unsafe_names_are_refused(name: str, start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys"))
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        with pytest.raises(SnapshotError, match="invalid snapshot name"):
            await save_snapshot(qmp, name)


async def _hang_writes(qmp: QmpSession, node: str) -> None:
    # From now on the first write to the disk is suspended: a save never ends.
    assert await qmp.hmp(f'qemu-io {node} "break pwritev hang"') == ""


async def test_save_that_does_not_finish_times_out(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys", hang_writes=True))
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        await _hang_writes(qmp, "sys")
        started = time.monotonic()
        with pytest.raises(SnapshotError, match=r"did not finish within 0\.5 s"):
            await save_snapshot(qmp, "final", timeout=0.5)
        assert time.monotonic() - started < 3


async def test_qemu_killed_during_save_is_a_clear_error(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys", hang_writes=True))
    async with QmpSession(
        vm.socket, connect_timeout=10, describe_failure=lambda: "log tail: qemu was killed"
    ) as qmp:
        await _hang_writes(qmp, "sys")
        with qmp.listen("JOB_STATUS_CHANGE") as jobs:
            save = asyncio.create_task(save_snapshot(qmp, "final", timeout=60))

            async def save_runs(budget: float) -> None:
                event = await qmp.next_event(jobs, timeout=budget)
                if event is None or event["data"]["status"] != "running":
                    raise NotReady(f"the save job is not running yet: {event}")

            # The job runs, then hangs at its first write: QEMU dies in the middle of it.
            await wait_for(save_runs, what="the save job to run", timeout=30, interval=0.01)
            vm.process.kill()
            started = time.monotonic()
            with pytest.raises(QmpError, match="was lost") as caught:
                await save
        assert time.monotonic() - started < 5
        assert "log tail: qemu was killed" in str(caught.value)


async def test_a_state_saved_after_deleting_the_other_fills_its_clusters(
    start_vm, make_disk
) -> None:
    # What a checkpoint does (vdsmlib.checkpoints.vm): delete the snapshots the VM came from,
    # then save its own. qcow2 allocates the lowest free clusters first, so the new state goes
    # where the old one was and the image holds one state, not two.
    disk, data = make_disk("sys"), make_disk("data")
    vm = start_vm(disk, data)
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        first = await save_snapshot(qmp, "start-ready", timeout=60)
        one_state = disk.path.stat().st_size
        assert await other_snapshots(qmp, "final") == ["start-ready"]
        assert await other_snapshots(qmp, "start-ready") == []
        for old in await other_snapshots(qmp, "final"):
            await delete_snapshot(qmp, old)
        final = await save_snapshot(qmp, "final", timeout=60)
        assert await other_snapshots(qmp, "final") == []
    assert [s.name for s in snapshots_in(disk.path)] == ["final"]
    assert [s.name for s in snapshots_in(data.path)] == ["final"]
    assert final.vm_state_size > 0 and first.vm_state_size > 0
    # Without the delete the image grows by the second state (at least its size).
    assert disk.path.stat().st_size < one_state + final.vm_state_size // 2
