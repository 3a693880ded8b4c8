"""What the client sends DSM for iSCSI, read off the wire between the client and a simulated DSM.

Real DSM's answers depend on parameters the simulated DSM may not check, so these tests record
the requests themselves, through a recording HTTP proxy in front of the simulated DSM, and hold
them against what Synology's own client sends (SynologyOpenSource/synology-csi):
- ``SYNO.Core.ISCSI.Target`` create with ``iqn`` =
  ``iqn.2000-01.com.synology:<hostname>.<name>`` (pkg/dsm/service/dsm.go, createMappingTarget);
- ``SYNO.Core.ISCSI.LUN`` list with ``types`` naming every LUN type (pkg/dsm/webapi/iscsi.go,
  LunList).
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests
from sim_dsm import ADMIN_PASSWORD, ADMIN_USER, Sim

from vdsmlib.services.api import apply, verify
from vdsmlib.services.spec import ServicesSpec, dsm_iqn
from vdsmlib.webapi import DsmClient
from vdsmlib.webapi.client import LUN_TYPES

Call = dict[str, str]


class _Recorder(http.server.BaseHTTPRequestHandler):
    upstream = ""
    calls: ClassVar[list[Call]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self, body: bytes | None) -> None:
        query = urllib.parse.urlsplit(self.path).query
        params = dict(urllib.parse.parse_qsl(query))
        if body and "form-urlencoded" in self.headers.get("Content-Type", ""):
            params.update(urllib.parse.parse_qsl(body.decode()))
        self.calls.append(params)
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() in ("cookie", "x-syno-token", "content-type")
        }
        resp = requests.request(
            self.command, self.upstream + self.path, data=body, headers=headers, timeout=10
        )
        self.send_response(resp.status_code)
        for key, value in resp.headers.items():
            if key.lower() in ("content-type", "set-cookie"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.content)))
        self.end_headers()
        self.wfile.write(resp.content)

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._forward(self.rfile.read(length))


@pytest.fixture
def recorded(sim: Sim) -> Iterator[tuple[str, list[Call]]]:
    """A proxy URL in front of ``sim`` and the list of calls it saw."""
    calls: list[Call] = []
    handler = type("Recorder", (_Recorder,), {"upstream": sim.url, "calls": calls})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _calls_of(calls: list[Call], api: str, method: str) -> list[Call]:
    return [c for c in calls if c.get("api") == api and c.get("method") == method]


def _value(raw: str) -> Any:
    """A parameter as DSM reads it: JSON where it parses, else the raw string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def test_target_is_created_with_an_iqn_in_dsm_form(recorded: tuple[str, list[Call]]) -> None:
    url, calls = recorded
    spec = ServicesSpec.model_validate({"iscsi": {"target": {"name": "CI_Target"}}})
    with DsmClient(url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as session:
        hostname = session.system_info("network")["hostname"]
        apply(session, spec)
        verify(session, spec)
        (target,) = session.target_list()
    (create,) = _calls_of(calls, "SYNO.Core.ISCSI.Target", "create")
    wanted = f"iqn.2000-01.com.synology:{hostname}.CI-Target"
    assert _value(create["iqn"]) == wanted == dsm_iqn(hostname, "CI_Target")
    assert target["iqn"] == wanted


def test_iqn_is_cut_at_128_characters() -> None:
    iqn = dsm_iqn("nas", "t" * 200)
    assert len(iqn) == 128 and iqn.startswith("iqn.2000-01.com.synology:nas.ttt")
    assert dsm_iqn("my_nas", "a+b") == "iqn.2000-01.com.synology:my-nas.apb"


def test_lun_list_asks_for_every_lun_type(recorded: tuple[str, list[Call]]) -> None:
    url, calls = recorded
    spec = ServicesSpec.model_validate(
        {"iscsi": {"target": {"name": "t"}, "lun": {"name": "l", "size_gb": 1}}}
    )
    with DsmClient(url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as session:
        apply(session, spec)
        luns = session.lun_list()
    assert [lun["name"] for lun in luns] == ["l"]
    lists = _calls_of(calls, "SYNO.Core.ISCSI.LUN", "list")
    assert lists
    for call in lists:
        assert _value(call["types"]) == list(LUN_TYPES)
    assert {"BLUN", "BLUN_THICK", "FILE", "THIN", "ADV", "BLOCK"} <= set(LUN_TYPES)
