#!/usr/bin/python3
"""The simulator's stand-in for vdsm/virtual-dsm's host helper (``host.bin``, qemu-host).

Two loopback listeners, as in vdsm/virtual-dsm v7.41 (src/serial.sh, src/print.sh):

* ``127.0.0.1:12345``: QEMU connects the guest's virtio-serial port ``vchannel`` here. The
  guest writes one JSON line when it boots and its web server answers:
  ``{"eth0": "20.20.20.21", "http_port": 5000}``. On the first report this helper starts
  ``/run/print.sh``, as host.bin starts print.sh when the booting guest first talks to it.
* ``127.0.0.1:2210``: ``GET /read?command=10`` answers the guest's network settings in the
  shape print.sh reads (``.data.data.ip.data[]``, ``.data.data.dsm_setting.data.http_port``),
  or ``{"status": "error"}`` while the guest has reported nothing. A guest restored with
  ``-loadvm`` does not boot and reports nothing, so ``/run/shm/dsm.url`` stays absent.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

CHANNEL = ("127.0.0.1", 12345)
API = ("127.0.0.1", 2210)
NETWORK_COMMAND = "10"
SHUTDOWN_COMMAND = "6"

_lock = threading.Lock()
_report: dict[str, Any] | None = None
_channel: socket.socket | None = None


def log(message: str) -> None:
    sys.stderr.write(f"host: {message}\n")
    sys.stderr.flush()


def _accept_reports(server: socket.socket) -> None:
    global _report
    started_print = False
    global _channel
    while True:
        conn, _ = server.accept()
        with _lock:
            _channel = conn
        with conn, conn.makefile("rb") as lines:
            for raw in lines:
                try:
                    report = json.loads(raw.decode(errors="replace"))
                    port = int(report["http_port"])
                    ip = str(report.get("eth0") or "")
                except (ValueError, KeyError, TypeError):
                    log(f"ignored a malformed guest report: {raw[:200]!r}")
                    continue
                with _lock:
                    _report = {"ip": ip, "http_port": port}
                if not started_print:
                    started_print = True
                    subprocess.Popen(["/run/print.sh"])


def _shutdown() -> dict[str, Any]:
    with _lock:
        channel = _channel
        try:
            if channel is None:
                raise OSError("the guest has never connected")
            channel.sendall(b'{"command": "shutdown"}\n')
        except OSError as err:
            return {"status": "error", "message": f"cannot reach the guest: {err}"}
    log("asked the guest to shut down")
    return {"status": "success", "data": {}}


def _answer(command: str) -> dict[str, Any]:
    if command == SHUTDOWN_COMMAND:
        return _shutdown()
    if command != NETWORK_COMMAND:
        return {"status": "error", "message": f"unsupported command {command!r}"}
    with _lock:
        report = dict(_report) if _report else None
    if report is None:
        return {"status": "error", "message": "the guest has not reported its network settings"}
    addresses = [{"name": "eth0", "ip": report["ip"]}] if report["ip"] else []
    return {
        "status": "success",
        "data": {
            "data": {
                "dsm_setting": {"data": {"http_port": report["http_port"]}},
                "ip": {"data": addresses},
            }
        },
    }


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != "/read":
            self.send_error(404)
            return
        command = parse_qs(url.query).get("command", [""])[0]
        body = json.dumps(_answer(command)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> int:
    channel = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    channel.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    channel.bind(CHANNEL)
    channel.listen(1)
    threading.Thread(target=_accept_reports, args=(channel,), daemon=True).start()
    ThreadingHTTPServer(API, _Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
