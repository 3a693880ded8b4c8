"""A QMP session with a running QEMU, over ``qemu.qmp.QMPClient``.

Example::

    async with QmpSession("/storage/qmp.sock", connect_timeout=60) as qmp:
        print(await qmp.status(), await qmp.version())   # running 7.2.22
        for dev in await qmp.block_devices():
            print(dev.name, dev.format, dev.read_only)

QEMU serves one QMP client per socket at a time: a second client connects at
the socket level but gets no greeting until the first one disconnects. Keep
sessions short-lived and always close them (``async with`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from qemu.qmp import (
    ConnectError,
    EventListener,
    ExecInterruptedError,
    ExecuteError,
    QMPClient,
    QMPError,
    Runstate,
    StateError,
)

from vdsmlib.qemu.errors import QmpError
from vdsmlib.qemu.image import SnapshotInfo
from vdsmlib.readiness import NotReady, ReadinessTimeout, wait_for

__all__ = ["Address", "BlockDevice", "QmpSession"]

logger = logging.getLogger(__name__)

#: A unix socket path, or a ``(host, port)`` pair.
Address = str | os.PathLike[str] | tuple[str, int]

# qemu.qmp logs every failed connection attempt at ERROR level. While we retry
# on purpose (QEMU creates its socket a moment after it starts), those records
# are noise: a client is named _CONNECTING until it is connected, and records
# of that logger go to our debug log only; the final error carries the last
# failure instead. After connecting, the client logs under its normal name.
_CONNECTING = "vdsm-connecting"
_CONNECTED = "vdsm"


def _demote(record: logging.LogRecord) -> bool:
    logger.debug("connection attempt: %s", record.getMessage())
    return False


logging.getLogger("qemu.qmp.protocol").getChild(_CONNECTING).addFilter(_demote)


@dataclass(frozen=True)
class BlockDevice:
    """An inserted block device, from query-block.

    ``device`` is the drive id (``-drive id=...``; empty for ``-blockdev``),
    ``qdev`` the guest device path, ``node_name`` the top block node (what the
    snapshot jobs take), ``format`` the driver of that node (``qcow2``, ``raw``).
    """

    device: str
    qdev: str
    node_name: str
    file: str
    format: str
    read_only: bool
    snapshots: tuple[SnapshotInfo, ...]

    @property
    def name(self) -> str:
        """The name QEMU uses for this device in its error messages."""
        return self.device or self.qdev or self.node_name

    @classmethod
    def from_query_block(cls, entry: Mapping[str, Any]) -> BlockDevice:
        """Build from one entry of query-block that has an ``inserted`` medium."""
        inserted = entry["inserted"]
        image = inserted.get("image", {})
        node = str(inserted.get("node-name", ""))
        file = str(inserted.get("file", ""))
        return cls(
            device=str(entry.get("device", "")),
            qdev=str(entry.get("qdev", "")),
            node_name=node,
            file=file,
            format=str(inserted.get("drv", "")),
            read_only=bool(inserted.get("ro", False)),
            snapshots=tuple(
                SnapshotInfo.from_qemu(s, node=node, file=file) for s in image.get("snapshots", [])
            ),
        )


class QmpSession:
    """An async QMP session; connect with ``async with`` or :meth:`connect`.

    :param address: unix socket path, or ``(host, port)``.
    :param connect_timeout: seconds to keep trying until the socket appears,
        accepts and greets; then :class:`QmpError`.
    :param poll_interval: seconds between connection attempts.
    :param describe_failure: called when the connection cannot be made or is
        lost; its text (e.g. the container's log tail) is added to the error.
    :param claim_socket: called (at most once per connection) when the unix
        socket exists but this user may not connect to it: QEMU running as
        another user (root in a container) made it with that user's umask.
        It should make the socket accessible, e.g. by changing its owner from
        the side that owns it; then connecting is tried again.
    """

    def __init__(
        self,
        address: Address,
        *,
        connect_timeout: float = 30.0,
        poll_interval: float = 0.1,
        describe_failure: Callable[[], str] | None = None,
        claim_socket: Callable[[], None] | None = None,
    ) -> None:
        self.address: str | tuple[str, int] = (
            address if isinstance(address, tuple) else os.fspath(address)
        )
        self.connect_timeout = connect_timeout
        self.poll_interval = poll_interval
        self.describe_failure = describe_failure
        self.claim_socket = claim_socket
        self._client: QMPClient | None = None

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        return f"<QmpSession {self._where} {state}>"

    @property
    def connected(self) -> bool:
        """True while the session is open and QEMU has not hung up."""
        return self._client is not None and self._client.runstate is Runstate.RUNNING

    async def __aenter__(self) -> QmpSession:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect, retrying until :attr:`connect_timeout`; QmpError if that runs out."""
        if self._client is not None:
            raise QmpError(f"QMP session to {self._where} is already connected")

        claimed = False

        async def attempt(budget: float) -> QMPClient:
            nonlocal claimed
            if isinstance(self.address, str):
                if not os.path.exists(self.address):
                    raise NotReady("the socket never appeared")
                if not claimed and self.claim_socket and not os.access(self.address, os.W_OK):
                    # connect(2) on a unix socket needs write permission on it
                    claimed = True
                    await asyncio.to_thread(self.claim_socket)
            client = QMPClient(_CONNECTING)
            try:
                async with asyncio.timeout(budget):
                    await client.connect(self.address)
            except TimeoutError as err:
                raise QmpError(
                    self._with_description(
                        f"no QMP connection to {self._where} within {self.connect_timeout:g} s: "
                        "connected, but QEMU sent no QMP greeting; QEMU serves one QMP client "
                        "at a time, so another client may still hold the socket (or QEMU is "
                        "busy, e.g. loading a snapshot)"
                    )
                ) from err
            except ConnectError as err:
                # Refused, reset or EOF: QEMU (or a port proxy in front of it) is not
                # listening yet. Anything else will not get better.
                if isinstance(err.exc, OSError | EOFError):
                    raise NotReady(f"last attempt: {err}") from err
                raise QmpError(
                    self._with_description(f"no QMP connection to {self._where}: {err}")
                ) from err
            return client

        try:
            client = await wait_for(
                attempt,
                what=f"QMP at {self._where}",
                timeout=self.connect_timeout,
                interval=self.poll_interval,
            )
        except ReadinessTimeout as err:
            problem = str(err.last_error) if err.last_error else "no attempt finished"
            raise QmpError(
                self._with_description(
                    f"no QMP connection to {self._where} within {self.connect_timeout:g} s: "
                    f"{problem}. Check that QEMU runs with -qmp on this address."
                )
            ) from (err.last_error.__cause__ if err.last_error else err)
        client.name = _CONNECTED
        self._client = client
        logger.debug("QMP connected to %s", self._where)

    async def close(self) -> None:
        """Disconnect so that the next client can connect; does nothing if closed."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.disconnect()
        except Exception as err:
            # disconnect() re-raises why the connection ended (EOF when QEMU quit
            # or died); the socket is closed either way, and close() only promises that.
            logger.debug("QMP connection to %s had ended: %r", self._where, err)

    async def execute(
        self, cmd: str, args: Mapping[str, object] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Run a QMP command and return its JSON result.

        Raises QmpError with QEMU's message and ``error_class`` when QEMU
        rejects the command, when the connection is lost, and when QEMU does
        not answer within ``timeout`` seconds (None: wait as long as it takes).
        """
        client = self._require()
        try:
            async with asyncio.timeout(timeout):
                return await client.execute(cmd, args)
        except TimeoutError as err:
            raise QmpError(
                self._with_description(
                    f"QEMU did not answer QMP command {cmd!r} on {self._where} within "
                    f"{timeout:g} s; it may be busy (a snapshot in progress) or hung"
                )
            ) from err
        except ExecuteError as err:
            raise QmpError(
                f"QMP command {cmd!r} failed on {self._where}: {err} ({err.error_class})",
                error_class=err.error_class,
            ) from err
        except (ExecInterruptedError, StateError) as err:
            raise self._lost(f"while running {cmd!r}") from err
        except QMPError as err:
            raise QmpError(f"QMP command {cmd!r} failed on {self._where}: {err!r}") from err

    async def hmp(self, command_line: str) -> str:
        """Run a human monitor command (e.g. ``info snapshots``) and return its text.

        HMP reports most failures as text, not as errors; prefer QMP commands
        when the result matters.
        """
        result = await self.execute("human-monitor-command", {"command-line": command_line})
        return str(result)

    async def status(self) -> str:
        """The VM run state: ``running``, ``paused``, ``prelaunch``, ``restore-vm``, ..."""
        result = await self.execute("query-status")
        return str(result["status"])

    async def version(self) -> str:
        """QEMU's version, e.g. ``"7.2.22"``."""
        qemu = (await self.execute("query-version"))["qemu"]
        return f"{qemu['major']}.{qemu['minor']}.{qemu['micro']}"

    async def block_devices(self) -> list[BlockDevice]:
        """The block devices with a medium inserted (empty drives are left out)."""
        entries = await self.execute("query-block")
        return [BlockDevice.from_query_block(e) for e in entries if "inserted" in e]

    async def quit(self, *, timeout: float = 10.0) -> None:
        """Ask QEMU to exit, wait until it hangs up (at most ``timeout``), and close."""
        client = self._require()
        try:
            await client.execute("quit")
        except ExecInterruptedError:
            pass  # QEMU may hang up before its reply arrives; that is the point of quit.
        except QMPError as err:
            raise QmpError(f"QMP command 'quit' failed on {self._where}: {err!r}") from err
        try:
            async with asyncio.timeout(timeout):
                await self._disconnected(client)
        except TimeoutError:
            logger.warning("QEMU at %s acknowledged quit but did not hang up", self._where)
        await self.close()

    @contextlib.contextmanager
    def listen(self, *names: str) -> Iterator[EventListener]:
        """Collect the named QMP events (all events if none named) inside a ``with`` block.

        Enter it before issuing the command whose events you want, then call
        :meth:`next_event` on the listener.
        """
        with self._require().listener(names) as listener:
            yield listener

    async def next_event(
        self, listener: EventListener, *, timeout: float | None
    ) -> dict[str, Any] | None:
        """The next event of ``listener``, or None after ``timeout`` seconds (None: no limit).

        Raises QmpError when QEMU hangs up while waiting, instead of waiting in vain.
        """
        client = self._require()
        if not listener.empty():
            return dict(await listener.get())
        event = asyncio.ensure_future(listener.get())
        gone = asyncio.ensure_future(self._disconnected(client))
        try:
            await asyncio.wait({event, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            event.cancel()
            gone.cancel()
        # An event that arrived just before the hang-up still counts.
        if event.done() and not event.cancelled():
            return dict(event.result())
        if gone.done() and not gone.cancelled():
            raise self._lost("while waiting for an event")
        return None

    def _lost(self, during: str) -> QmpError:
        """The error for a connection QEMU ended; the caller raises it."""
        return QmpError(
            self._with_description(
                f"QMP connection to {self._where} was lost {during}: QEMU quit or crashed"
            )
        )

    @property
    def _where(self) -> str:
        if isinstance(self.address, tuple):
            return f"{self.address[0]}:{self.address[1]}"
        return f"unix socket {self.address}"

    def _require(self) -> QMPClient:
        if self._client is None:
            raise QmpError(
                f"QMP session to {self._where} is not connected; "
                "use 'async with QmpSession(...)' or call connect() first"
            )
        return self._client

    @staticmethod
    async def _disconnected(client: QMPClient) -> None:
        while client.runstate is Runstate.RUNNING:
            await client.runstate_changed()

    def _with_description(self, message: str) -> str:
        if self.describe_failure is None:
            return message
        try:
            description = self.describe_failure()
        except Exception as err:
            description = f"(describe_failure failed: {err!r})"
        return f"{message}\n{description}" if description else message
