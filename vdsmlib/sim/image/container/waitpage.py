#!/usr/bin/python3
"""Port 5000 of the simulator container.

Until the guest's web server answers HTTP on 127.0.0.1:15000 (QEMU's forward of guest port
5000), every request gets HTTP 200 with a "please wait" page, as vdsm/virtual-dsm does while
DSM boots. From the first HTTP answer on, connections are proxied to the guest as raw TCP, and
/run/shm/dsm.url names where DSM's web server is reachable from inside the container.
(Upstream writes the guest's NAT address there; with QEMU user networking the guest's
10.0.2.15 exists only inside QEMU, so the forwarded loopback port is the address a process in
the container can use.) A forwarded port accepts TCP even while nothing listens in the guest,
so readiness means an HTTP status line, not a connect.

Only python3-minimal is in the image (no asyncio), hence threads.
"""

import contextlib
import os
import socket
import sys
import threading
import time

LISTEN = ("0.0.0.0", 5000)
GUEST = ("127.0.0.1", 15000)
GUEST_URL = f"{GUEST[0]}:{GUEST[1]}"
URL_FILE = "/run/shm/dsm.url"
PROBE_INTERVAL = 0.3

PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<title>Virtual DSM</title>
<style>
body { font-family: sans-serif; background: #f5f7fa; color: #333; text-align: center;
       padding-top: 15%; }
</style>
</head>
<body>
<h1>Virtual DSM</h1>
<p id="wait">Please wait while Virtual DSM is booting...</p>
</body>
</html>
"""

ready = threading.Event()


def log(message: str) -> None:
    sys.stderr.write(f"waitpage: {message}\n")
    sys.stderr.flush()


def guest_answers() -> bool:
    try:
        with socket.create_connection(GUEST, timeout=1.0) as sock:
            sock.settimeout(3.0)
            sock.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = sock.recv(5)
            if answer != b"HTTP/":
                return False
            # Drain the reply so the guest does not see it cut off by a reset.
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
            return True
    except OSError:
        return False


def probe_guest() -> None:
    while not guest_answers():
        time.sleep(PROBE_INTERVAL)
    tmp = URL_FILE + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(GUEST_URL + "\n")
    os.replace(tmp, URL_FILE)
    ready.set()
    log(f"the guest answers HTTP; proxying port 5000 to {GUEST_URL}")


def serve_wait_page(client: socket.socket) -> None:
    client.settimeout(5.0)
    head = b""
    try:
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
    except OSError:
        return
    is_head = head.startswith(b"HEAD ")
    response = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"Cache-Control: no-store\r\n"
        b"Connection: close\r\n"
        b"Content-Length: " + str(len(PAGE)).encode() + b"\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        client.sendall(response if is_head else response + PAGE)


def pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def proxy(client: socket.socket) -> None:
    try:
        upstream = socket.create_connection(GUEST, timeout=5.0)
    except OSError as err:
        log(f"cannot reach the guest: {err}")
        return
    upstream.settimeout(None)
    client.settimeout(None)
    with upstream:
        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join()


def handle(client: socket.socket) -> None:
    with client:
        if ready.is_set():
            proxy(client)
        else:
            serve_wait_page(client)


def main() -> int:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(LISTEN)
    server.listen(128)
    threading.Thread(target=probe_guest, daemon=True).start()
    while True:
        client, _ = server.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(client,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
