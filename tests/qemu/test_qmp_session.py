"""QmpSession against a real QEMU: connect/retry, queries, errors, close, lost connections."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import pytest
from qemu.qmp import ExecuteError

from vdsmlib.errors import VdsmError
from vdsmlib.qemu import QmpError, QmpSession, qemu_version

pytestmark = pytest.mark.qemu


async def test_connect_retries_until_the_socket_appears(
    start_vm, make_disk, socket_dir: Path
) -> None:
    disk = make_disk("sys")
    sock = socket_dir / "late.sock"
    # QEMU starts only after the session began to wait for its socket.
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, lambda: start_vm(disk, name="late"))
    started = time.monotonic()
    async with QmpSession(sock, connect_timeout=10, poll_interval=0.05) as qmp:
        waited = time.monotonic() - started
        assert qmp.connected
        assert await qmp.status() == "running"
    assert 0.5 <= waited < 5


async def test_status_version_and_block_devices(start_vm, make_disk) -> None:
    sys_disk, data_disk = make_disk("sys"), make_disk("data", read_only=True)
    vm = start_vm(sys_disk, data_disk)
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        assert await qmp.status() == "running"
        assert await qmp.version() == qemu_version()
        devices = {d.device: d for d in await qmp.block_devices()}
    assert set(devices) == {"sys", "data"}
    assert devices["sys"].format == "qcow2"
    assert devices["sys"].file == str(sys_disk.path)
    assert devices["sys"].node_name
    assert not devices["sys"].read_only
    assert devices["data"].read_only
    assert devices["sys"].snapshots == ()


async def test_paused_vm_and_hmp(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys"), paused=True)
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        assert await qmp.status() == "prelaunch"
        assert "VM status: paused" in await qmp.hmp("info status")


async def test_connect_gives_up_naming_socket_and_description(socket_dir: Path) -> None:
    missing = socket_dir / "never.sock"
    session = QmpSession(
        missing, connect_timeout=0.3, describe_failure=lambda: "container log: qemu: boom"
    )
    started = time.monotonic()
    with pytest.raises(QmpError) as caught:
        await session.connect()
    assert time.monotonic() - started < 2
    message = str(caught.value)
    assert str(missing) in message
    assert "never appeared" in message
    assert "container log: qemu: boom" in message
    assert isinstance(caught.value, VdsmError)


async def test_command_error_keeps_qemu_error_class(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys"))
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        with pytest.raises(QmpError) as caught:
            await qmp.execute("no-such-command")
        assert caught.value.error_class == "CommandNotFound"
        assert isinstance(caught.value.__cause__, ExecuteError)
        assert "no-such-command" in str(caught.value)
        # The session is still usable after a rejected command.
        assert await qmp.status() == "running"


async def test_close_really_disconnects(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys"))
    first = QmpSession(vm.socket, connect_timeout=10)
    await first.connect()
    # QEMU serves one client at a time: a second one gets no greeting.
    with pytest.raises(QmpError, match="another client may still hold the socket"):
        await QmpSession(vm.socket, connect_timeout=0.5).connect()
    await first.close()
    await first.close()  # idempotent
    assert not first.connected
    async with QmpSession(vm.socket, connect_timeout=2) as second:
        assert await second.status() == "running"
    with pytest.raises(QmpError, match="not connected"):
        await second.status()


async def test_qemu_killed_during_event_wait_is_a_clear_error(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys"))
    async with QmpSession(
        vm.socket, connect_timeout=10, describe_failure=lambda: "log tail: killed"
    ) as qmp:
        with qmp.listen("NO_SUCH_EVENT") as listener:
            asyncio.get_running_loop().call_later(0.3, vm.process.kill)
            started = time.monotonic()
            with pytest.raises(QmpError, match="was lost while waiting") as caught:
                await qmp.next_event(listener, timeout=30)
            assert time.monotonic() - started < 5
            assert "log tail: killed" in str(caught.value)
        with pytest.raises(QmpError, match="was lost while running 'query-status'"):
            await qmp.status()


async def test_next_event_times_out_with_none(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys"))
    async with QmpSession(vm.socket, connect_timeout=10) as qmp:
        with qmp.listen("STOP") as listener:
            assert await qmp.next_event(listener, timeout=0.2) is None
            await qmp.execute("stop")
            event = await qmp.next_event(listener, timeout=5)
        assert event is not None
        assert event["event"] == "STOP"
        assert await qmp.status() == "paused"


async def test_quit_ends_qemu(start_vm, make_disk) -> None:
    vm = start_vm(make_disk("sys"))
    qmp = QmpSession(vm.socket, connect_timeout=10)
    await qmp.connect()
    await qmp.quit()
    assert vm.process.wait(timeout=10) == 0
    assert not qmp.connected
    await qmp.close()


async def test_retries_do_not_log_errors(socket_dir: Path, caplog) -> None:
    stale = socket_dir / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(stale))  # a socket file nobody listens on: connections are refused
    leftover.close()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(QmpError, match="Connection refused"):
        await QmpSession(stale, connect_timeout=0.3, poll_interval=0.05).connect()
    attempts = [r for r in caplog.records if "connection attempt" in r.getMessage()]
    assert len(attempts) >= 2
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
