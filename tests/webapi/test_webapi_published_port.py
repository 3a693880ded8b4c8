"""Host-side waits through a published port while the guest boots.

With virtual-dsm's NAT networking, Docker's proxy accepts a connection on the published port and
forwards it to the container's eth0, where iptables sends it on to the guest (vdsm/virtual-dsm
v7.41 src/network.sh, configureNAT). While the guest is not up, the client sees connections
accepted and then reset, or accepted and never answered. The readiness waits must take both as
"not yet". Here a real TCP front does exactly that before it starts passing connections to the
simulated DSM.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sim_dsm import ADMIN_PASSWORD, ADMIN_USER, Sim

from vdsmlib.webapi.readiness import DsmApiReady, DsmLoginReady

RESETS = 3
SILENT = 2


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def booting_front(sim: Sim) -> Iterator[tuple[str, list[str]]]:
    """A port that resets, then swallows, then forwards connections to ``sim``."""
    upstream = sim.url.removeprefix("http://").rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []
    silent: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if len(seen) < RESETS:
                seen.append("reset")
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            elif len(seen) < RESETS + SILENT:
                seen.append("silent")
                silent.append(conn)
            else:
                seen.append("forward")
                back = socket.create_connection((upstream[0], int(upstream[1])))
                threading.Thread(target=_pipe, args=(conn, back), daemon=True).start()
                threading.Thread(target=_pipe, args=(back, conn), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        stop.set()
        listener.close()
        thread.join(5)
        for conn in silent:
            conn.close()


@pytest.mark.parametrize(
    "strategy",
    [
        lambda url: DsmApiReady(url, timeout=30, interval=0.1, request_timeout=1),
        lambda url: DsmLoginReady(
            url, ADMIN_USER, ADMIN_PASSWORD, timeout=30, interval=0.1, request_timeout=1
        ),
    ],
    ids=["api", "login"],
)
def test_waits_outlast_resets_and_silence(
    booting_front: tuple[str, list[str]], strategy: Callable[[str], DsmApiReady | DsmLoginReady]
) -> None:
    url, seen = booting_front
    started = time.monotonic()
    strategy(url).wait()
    assert seen[: RESETS + SILENT] == ["reset"] * RESETS + ["silent"] * SILENT
    assert seen[-1] == "forward"
    assert time.monotonic() - started < 20
