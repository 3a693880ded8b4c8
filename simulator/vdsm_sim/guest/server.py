"""The HTTP side of the simulated DSM: one ThreadingHTTPServer for UI, Web API and assets.

Routes:

- ``GET /``: the current view (installing, welcome, login, a post-wizard screen, desktop).
- ``GET /sim/static/<file>``: CSS and JS of the UI.
- ``GET /sim/ui/view[?want=admin]``: the current view as JSON ``{view, screen, html}``.
- ``POST /sim/ui/admin``: the admin form (JSON body); ``POST /sim/ui/screen``: a post-wizard
  screen's action (JSON ``{screen, act, option}``); ``GET /sim/ui/panel?name=``: Control Panel
  fragments. These need the admin's ``id`` cookie except the admin form.
- ``GET /sim/state``: a JSON summary of the state, for tests and debugging (no secrets).
- ``GET|POST /webapi/{query,auth,entry}.cgi``: the Web API (see :mod:`.webapi`).
"""

from __future__ import annotations

import errno
import json
import shutil
import ssl
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from . import dataplane, filestation, views, webapi
from .facts import policy
from .screens import SCREENS
from .state import Account, Session, SimState

__all__ = ["SimServer", "make_server"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
_CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}
_WEBAPI_CGIS = ("query.cgi", "auth.cgi", "entry.cgi", "encryption.cgi", "otp.cgi")


def _form(encoded: str) -> dict[str, str]:
    """url-encoded parameters; a name given several times (``additional=a&additional=b``, as
    N4S4/synology-api sends a list) is its values comma-separated."""
    out: dict[str, str] = {}
    for name, value in parse_qsl(encoded, keep_blank_values=True):
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def _discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def _log(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class SimServer(ThreadingHTTPServer):
    """The server; :attr:`state` is the simulated DSM's whole memory."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops the SYNs of a burst of connections (20 clients
    # at once): each dropped one waits out TCP's retransmission (1 s, 3 s, ...). nginx: 511.
    request_queue_size = 511

    def __init__(self, address: tuple[str, int], state: SimState) -> None:
        super().__init__(address, Handler)
        self.state = state
        self.tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs on the request's own thread, so a slow client blocks no other.
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)


class Handler(BaseHTTPRequestHandler):
    server: SimServer
    server_version = "nginx"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    # Small responses on keep-alive connections: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every request.
    disable_nagle_algorithm = True

    # -- plumbing ---------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        # Replaced by one line per request in _finish(); the default would log query strings,
        # which can hold passwords.
        pass

    @property
    def state(self) -> SimState:
        return self.server.state

    def _cookie_sid(self) -> str | None:
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "id" and value:
                return value
        return None

    def _session(self) -> Session | None:
        return self.state.session(self._cookie_sid())

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: list[tuple[str, str]] | None = None,
        note: str = "",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers or []:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        path = urlsplit(self.path).path
        _log(f"{self.command} {path} {status}{' ' + note if note else ''}")

    def _send_json(
        self,
        value: Any,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        note: str = "",
    ) -> None:
        body = json.dumps(value, separators=(",", ":")).encode()
        self._send(status, body, "application/json; charset=utf-8", headers, note)

    def _send_html(self, html: str, status: int = 200) -> None:
        self._send(status, html.encode(), "text/html; charset=utf-8")

    @staticmethod
    def _cookie_header(sid: str) -> tuple[str, str]:
        return ("Set-Cookie", f"id={sid}; Path=/; HttpOnly; SameSite=Lax")

    # -- routing ----------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = _form(url.query)
        path = url.path
        if path in ("/", "/index.cgi", "/webman/index.cgi"):
            view = views.current_view(self.state, self._session())
            self._send_html(views.page(view, self.state.hostname))
        elif path.startswith("/sim/static/"):
            self._static(path.removeprefix("/sim/static/"))
        elif path == "/sim/ui/view":
            self._send_json(views.current_view(self.state, self._session(), query.get("want", "")))
        elif path == "/sim/ui/panel":
            self._panel(query.get("name", ""))
        elif path == "/sim/state":
            self._send_json(self.state.public_state())
        elif path.startswith("/webapi/"):
            self._webapi(path.removeprefix("/webapi/"), query)
        else:
            self._send_html("<h1>404 Not Found</h1>", 404)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        ctype = self.headers.get("Content-Type", "")
        if path.startswith("/webapi/") and ctype.lower().startswith("multipart/form-data"):
            self._webapi_multipart(path.removeprefix("/webapi/"), url.query, ctype)
            return
        # Read the body whatever the route, so a kept-alive connection stays in step.
        body = self._body()
        if path.startswith("/webapi/"):
            params = _form(url.query)
            if "json" not in self.headers.get("Content-Type", ""):
                params.update(_form(body.decode("utf-8", "replace")))
            self._webapi(path.removeprefix("/webapi/"), params)
        elif path == "/sim/ui/admin":
            self._admin(self._json(body))
        elif path == "/sim/ui/screen":
            self._screen(self._json(body))
        else:
            self._send_html("<h1>404 Not Found</h1>", 404)

    # -- handlers ---------------------------------------------------------------------------

    def _static(self, name: str) -> None:
        target = (STATIC_DIR / name).resolve()
        if STATIC_DIR not in target.parents or not target.is_file():
            self._send_html("<h1>404 Not Found</h1>", 404)
            return
        ctype = _CONTENT_TYPES.get(target.suffix, "application/octet-stream")
        self._send(200, target.read_bytes(), ctype)

    def _webapi_multipart(self, cgi: str, query: str, ctype: str) -> None:
        """A multipart call (File Station's upload): the fields join the query's parameters,
        the file streams to the volume (filestation.receive_multipart) and is handed on as
        ``__upload_file``/``__upload_name``; whatever the handler did not keep is removed."""
        params = _form(query)
        length = int(self.headers.get("Content-Length") or 0)
        source: Any = self.rfile
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        # With a Content-Length beside "chunked" the body is plain: python-requests sends a
        # generator body that way when the caller sets the length.
        if chunked and length <= 0:
            source, length = filestation.ChunkedReader(self.rfile), sys.maxsize
        tmp_dir = filestation.volume_root(self.state) / filestation.UPLOAD_DIR_NAME
        upload: Path | None = None
        try:
            fields, upload, name = filestation.receive_multipart(source, length, ctype, tmp_dir)
        except filestation.UploadError as err:
            self.close_connection = True
            self._send_json({"success": False, "error": {"code": err.code}}, note="bad upload")
            return
        except OSError as err:
            self.close_connection = True
            code = 416 if err.errno == errno.ENOSPC else 401
            self._send_json({"success": False, "error": {"code": code}}, note=str(err))
            return
        params.update(fields)
        if upload is not None:
            params["__upload_file"] = str(upload)
            params["__upload_name"] = name
        try:
            # the upload's leftover goes before the answer does: a client that lists the folder
            # next sees no trace of it
            self._webapi(cgi, params, before_answer=lambda: _discard(upload))
        finally:
            _discard(upload)

    def _send_file(self, real: Path, note: str) -> None:
        size = real.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(real.name)}")
        self.end_headers()
        if self.command != "HEAD":
            with real.open("rb") as f:
                shutil.copyfileobj(f, self.wfile, 1 << 16)
        _log(f"{self.command} {urlsplit(self.path).path} 200 {note}")

    def _webapi(
        self, cgi: str, params: dict[str, str], before_answer: Callable[[], None] | None = None
    ) -> None:
        # DSM 7's web UI calls ``entry.cgi/<api name>``: the path names the API when the
        # parameters do not.
        cgi, _, path_api = cgi.partition("/")
        if path_api and not params.get("api"):
            params["api"] = path_api
        if cgi not in _WEBAPI_CGIS:
            # An unknown CGI: DSM's JSON error (no such API), with HTTP 404.
            self._send_json(
                {"success": False, "error": {"code": webapi.E_NO_API}}, 404, note="no such cgi"
            )
            return
        result = webapi.handle(
            self.state,
            cgi,
            params,
            cookie_sid=self._cookie_sid(),
            header_token=self.headers.get("X-SYNO-TOKEN"),
        )
        headers = [self._cookie_header(result.set_cookie_sid)] if result.set_cookie_sid else []
        for name, value in result.cookies:
            headers.append(("Set-Cookie", f"{name}={value}; Path=/; SameSite=Lax"))
        outcome = "ok" if result.code == 0 else f"error {result.code}"
        note = f"api={result.api} method={result.method} version={result.version} -> {outcome}"
        if before_answer is not None:
            before_answer()
        if result.download is not None and result.code == 0:
            self._send_file(result.download, note)
            return
        self._send_json(result.payload, headers=headers, note=note)

    def _panel(self, name: str) -> None:
        if not self.state.is_admin(self._session()):
            self._send_json({"error": "not logged in"}, 403)
            return
        html = views.panel(self.state, name)
        if html is None:
            self._send_json({"error": f"no panel {name!r}"}, 404)
            return
        self._send_json({"html": html})

    def _admin(self, form: dict[str, Any]) -> None:
        state = self.state
        fields = {
            key: str(form.get(key, ""))
            for key in ("device_name", "nas_account", "password", "password_confirm")
        }
        with state.lock:
            if state.account is not None or not state.install_ready():
                # Already set up (or not yet installable): show whatever is current instead.
                self._send_json(
                    {"ok": False, "view": views.current_view(state, self._session())}, 409
                )
                return
        errors = policy.check_admin_form(
            fields["device_name"],
            fields["nas_account"],
            fields["password"],
            fields["password_confirm"],
        )
        if errors:
            self._send_json({"ok": False, "errors": errors}, note="admin form rejected")
            return
        # Simulated latency of DSM saving the account (SIM_SAVE_MS), on this request's thread.
        time.sleep(state.scenario.save_ms / 1000)
        with state.lock:
            if state.account is not None:
                self._send_json(
                    {"ok": False, "view": views.current_view(state, self._session())}, 409
                )
                return
            state.account = Account(name=fields["nas_account"], password=fields["password"])
            state.hostname = fields["device_name"]
            session = state.new_session(fields["nas_account"])
            view = views.current_view(state, session)
        dataplane.changed(state)  # the admin's SMB account
        self._send_json(
            {"ok": True, "view": view},
            headers=[self._cookie_header(session.sid)],
            note="admin account created",
        )

    def _screen(self, body: dict[str, Any]) -> None:
        state = self.state
        session = self._session()
        screen = str(body.get("screen", ""))
        act = str(body.get("act", ""))
        with state.lock:
            current = state.current_screen() if state.is_admin(session) else None
            valid = current is not None and current == screen and act in SCREENS[current].acts
        if not valid:
            self._send_json({"ok": False, "view": views.current_view(state, session)}, 409)
            return
        # Simulated latency of a screen leaving (SIM_TRANSITION_MS): the page keeps showing it.
        time.sleep(state.scenario.transition_ms / 1000)
        with state.lock:
            if state.current_screen() == screen:
                state.screens_done.append(screen)
                state.screen_actions[screen] = act
                effect = SCREENS[screen].effect
                if effect is not None:
                    effect(state, body)
            view = views.current_view(state, session)
        self._send_json({"ok": True, "view": view}, note=f"screen {screen} {act}")


def make_server(
    host: str, port: int, state: SimState, *, tls: tuple[str, str] | None = None
) -> SimServer:
    """Bind the simulator's server (``port`` 0 picks a free one; see ``server_address``).

    ``tls`` is ``(certificate file, key file)``: the server then speaks HTTPS, as DSM on 5001.
    """
    server = SimServer((host, port), state)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.tls = context
    return server
