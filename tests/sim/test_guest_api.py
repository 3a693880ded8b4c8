"""The simulated DSM's Web API, its server-side wizard state and the knobs that affect them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from vdsm_sim.guest.scenario import SCREEN_IDS, Scenario, ScenarioError, order_screens

from vdsmlib.dsm import policy
from vdsmlib.dsm.webapi import CATALOGUE

GuestServer = Any  # tests/sim/conftest.py GuestServer: url, proc, log()

ADMIN = "simadmin"
PASSWORD = "Sup3rSecret"
SERVER_NAME = "simnas"


def call(
    base: str,
    cgi: str = "entry.cgi",
    *,
    session: requests.Session | None = None,
    post: bool = False,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """One Web API call; returns the envelope (HTTP must be 200)."""
    http = session or requests
    url = f"{base}/webapi/{cgi}"
    params = {k: str(v) for k, v in params.items()}
    if post:
        resp = http.post(url, data=params, headers=headers, timeout=10)
    else:
        resp = http.get(url, params=params, headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def err(envelope: dict[str, Any]) -> int:
    assert envelope["success"] is False, envelope
    return envelope["error"]["code"]


def ok(envelope: dict[str, Any]) -> Any:
    assert envelope["success"] is True, envelope
    return envelope.get("data")


def create_admin(base: str, **override: str) -> requests.Response:
    form = {
        "device_name": SERVER_NAME,
        "nas_account": ADMIN,
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    form.update(override)
    return requests.post(f"{base}/sim/ui/admin", json=form, timeout=10)


def login(base: str, version: int = 3, **extra: Any) -> dict[str, Any]:
    return ok(
        call(
            base,
            "auth.cgi",
            api="SYNO.API.Auth",
            version=version,
            method="login",
            account=ADMIN,
            passwd=PASSWORD,
            format="sid",
            **extra,
        )
    )


@pytest.fixture(scope="module")
def guest(guest_launcher: Any) -> Iterator[GuestServer]:
    with guest_launcher() as server:
        yield server


@pytest.fixture
def run_guest(guest_launcher: Any) -> Any:
    return guest_launcher


@pytest.fixture(scope="module")
def configured(guest: GuestServer) -> GuestServer:
    """The module's guest with its admin account created (idempotent across tests)."""
    state = requests.get(f"{guest.url}/sim/state", timeout=5).json()
    if not state["configured"]:
        assert create_admin(guest.url).json()["ok"] is True
    return guest


@pytest.fixture
def sid(configured: GuestServer) -> str:
    return str(login(configured.url)["sid"])


# -- pure rules -------------------------------------------------------------------------------


def test_policy_rules() -> None:
    assert policy.check_password(PASSWORD, ADMIN) == []
    weak = policy.check_password("secret", ADMIN)
    assert any("8 characters" in p for p in weak)
    assert any("mixed case" in p for p in weak)
    assert any("numeric" in p for p in weak)
    assert policy.check_password("Simadmin123", ADMIN) == [
        "The password must not contain the user name."
    ]
    assert policy.check_user_name("alice") == []
    for reserved in ("admin", "Guest", "ROOT"):
        assert any("reserved" in p for p in policy.check_user_name(reserved)), reserved
    assert policy.check_user_name("")
    assert policy.check_user_name("-x")
    assert policy.check_server_name("nas-01") == []
    assert policy.check_server_name("a" * 16)
    assert policy.check_server_name("my_nas")
    assert policy.check_server_name("-nas")
    assert policy.check_server_name("")
    form = policy.check_admin_form("nas", "alice", "Sup3rSecret", "Other3Secret")
    assert form == {"password_confirm": ["The passwords do not match."]}


def test_seeded_screen_order_is_reproducible_and_sensible() -> None:
    orders = {seed: order_screens(list(SCREEN_IDS), seed) for seed in range(40)}
    assert orders[7] == order_screens(list(SCREEN_IDS), 7)
    assert len({tuple(o) for o in orders.values()}) > 5
    for order in orders.values():
        assert len(set(order)) == len(order)
        wizard = [
            i
            for i, s in enumerate(order)
            if s in ("update-options", "synology-account", "user-experience")
        ]
        assert wizard == list(range(len(wizard)))
        assert "update-options" in order and "2fa-promo" in order
        if "mfa-warning" in order:
            i = order.index("mfa-warning")
            assert order[i - 1] in ("2fa-promo", "amfa-promo")
        if "notification-reminder" in order:
            i = order.index("notification-reminder")
            assert order[i - 1] == "notification-setup"
    assert order_screens(["amfa-promo", "2fa-promo"], None) == ["amfa-promo", "2fa-promo"]


def test_scenario_from_env() -> None:
    sc = Scenario.from_env({})
    assert sc.screens == SCREEN_IDS and sc.build_number == "72806" and not sc.require_synotoken
    assert Scenario.from_env({"SIM_SCREENS": ""}).screens == ()
    sc = Scenario.from_env({"SIM_SCREENS": "2fa-promo,mfa-warning", "SIM_EXTRA_DIALOG": "Hi"})
    assert sc.screens == ("extra-dialog", "2fa-promo", "mfa-warning")
    sc = Scenario.from_env({"SIM_DSM_VERSION": "DSM 7.3.2-86009 Update 1"})
    assert (sc.build_number, sc.product_version) == ("86009", "7.3.2")
    with pytest.raises(ScenarioError, match="unknown screens"):
        Scenario.from_env({"SIM_SCREENS": "update-options,nope"})
    with pytest.raises(ScenarioError):
        Scenario.from_env({"SIM_TRANSITION_MS": "slow"})


# -- before setup -----------------------------------------------------------------------------


def test_fresh_guest_before_setup(run_guest: Any) -> None:
    with run_guest() as server:
        base = server.url
        page = requests.get(base + "/", timeout=5)
        assert page.status_code == 200
        assert 'class="welcome-page-btn"' in page.text
        assert "Welcome to DSM 7" in page.text
        assert "Next-generation data management begins here" in page.text
        form = requests.get(base + "/sim/ui/view", params={"want": "admin"}, timeout=5).json()
        assert form["view"] == "admin"
        for needle in (
            'id="syno-0" name="device_name"',
            'id="syno-1" name="nas_account"',
            'id="syno-2" name="password" type="password"',
            'id="syno-3" name="password" type="password"',
            "Get started with your VirtualDSM",
            'value="VirtualDSM"',
        ):
            assert needle in form["html"], needle
        # No account yet: no login, admin APIs need a session (none at all is 119, like DSM).
        assert err(login_envelope(base)) == 400
        assert err(call(base, api="SYNO.Core.FileServ.NFS", version=1, method="get")) == 119
        assert ok(call(base, "query.cgi", api="SYNO.API.Info", version=1, method="query"))


def login_envelope(base: str, **over: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "api": "SYNO.API.Auth",
        "version": 3,
        "method": "login",
        "account": ADMIN,
        "passwd": PASSWORD,
        "format": "sid",
    }
    params.update(over)
    return call(base, "auth.cgi", **params)


def test_admin_form_enforces_policy_server_side(run_guest: Any) -> None:
    with run_guest() as server:
        base = server.url
        cases = [
            ({"password": "weak", "password_confirm": "weak"}, "password"),
            ({"nas_account": "admin"}, "nas_account"),
            ({"device_name": "bad_name!"}, "device_name"),
            ({"password_confirm": "Different1x"}, "password_confirm"),
        ]
        for override, field in cases:
            body = create_admin(base, **override).json()
            assert body["ok"] is False and field in body["errors"], (override, body)
        assert requests.get(base + "/sim/state", timeout=5).json()["configured"] is False
        good = create_admin(base)
        assert good.json()["ok"] is True
        assert "id" in good.cookies
        assert good.json()["view"]["screen"] == "update-options"
        # A second submission cannot replace the account.
        again = create_admin(base, nas_account="other")
        assert again.status_code == 409
        state = requests.get(base + "/sim/state", timeout=5).json()
        assert state["admin_user"] == ADMIN and state["hostname"] == SERVER_NAME
        assert PASSWORD not in json.dumps(state)
        assert PASSWORD not in server.log()


def test_install_delay_hides_welcome_button(run_guest: Any) -> None:
    with run_guest({"SIM_INSTALL_DELAY": "1.5"}) as server:
        base = server.url
        page = requests.get(base + "/", timeout=5).text
        assert "welcome-page-btn" not in page and 'data-view="installing"' in page
        assert create_admin(base).status_code == 409
        deadline = time.monotonic() + 10
        while "welcome-page-btn" not in requests.get(base + "/", timeout=5).text:
            assert time.monotonic() < deadline, "welcome button never appeared"
            time.sleep(0.1)
        assert create_admin(base).json()["ok"] is True


def test_bad_scenario_stops_the_guest(run_guest: Any) -> None:
    with pytest.raises(RuntimeError, match="exited with 2"), run_guest({"SIM_SCREENS": "bogus"}):
        pass


# -- wizard state on the server ---------------------------------------------------------------


def test_screens_complete_on_the_server_and_reload_shows_next(run_guest: Any) -> None:
    with run_guest({"SIM_SCREENS": "update-options,2fa-promo,notification-setup"}) as server:
        base = server.url
        http = requests.Session()
        assert http.post(
            f"{base}/sim/ui/admin",
            json={
                "device_name": SERVER_NAME,
                "nas_account": ADMIN,
                "password": PASSWORD,
                "password_confirm": PASSWORD,
            },
            timeout=5,
        ).json()["ok"]
        # Another browser (no cookie) meets the login page.
        assert 'data-view="login"' in requests.get(base + "/", timeout=5).text
        assert 'data-screen="update-options"' in http.get(base + "/", timeout=5).text
        wrong = http.post(f"{base}/sim/ui/screen", json={"screen": "2fa-promo", "act": "skip"})
        assert wrong.status_code == 409
        anon = requests.post(
            f"{base}/sim/ui/screen", json={"screen": "update-options", "act": "next"}, timeout=5
        )
        assert anon.status_code == 409 and anon.json()["view"]["view"] == "login"
        steps = [
            ("update-options", "next", "notify"),
            ("2fa-promo", "skip", ""),
            ("notification-setup", "close", ""),
        ]
        for screen, act, option in steps:
            assert f'data-screen="{screen}"' in http.get(base + "/", timeout=5).text
            res = http.post(
                f"{base}/sim/ui/screen",
                json={"screen": screen, "act": act, "option": option},
                timeout=5,
            )
            assert res.json()["ok"] is True
        page = http.get(base + "/", timeout=5).text
        assert 'data-view="desktop"' in page and "v-window-container-mask" not in page
        state = http.get(base + "/sim/state", timeout=5).json()
        assert state["screens_pending"] == [] and state["update_option"] == "notify"


# -- Web API: discovery and common errors -----------------------------------------------------


#: The versions of what the simulator serves, as the recorded real DSM 7 catalogue lists them
#: (vdsmlib/dsm/captured_catalogue.py).
EXPECTED_RANGES = {
    "SYNO.API.Info": (1, 1),
    "SYNO.API.Auth": (1, 7),
    "SYNO.Entry.Request": (1, 2),
    "SYNO.Core.FileServ.NFS": (1, 3),
    "SYNO.Core.FileServ.SMB": (1, 3),
    "SYNO.Core.ISCSI.LUN": (1, 1),
    "SYNO.Core.ISCSI.Target": (1, 1),
    "SYNO.Core.Storage.Volume": (1, 1),
    "SYNO.Core.System": (1, 3),
    "SYNO.Core.Service": (1, 3),
    "SYNO.DSM.Info": (2, 2),
    "SYNO.Core.Share": (1, 1),
    "SYNO.Core.Share.Snapshot": (1, 2),
    "SYNO.Core.Share.Permission": (1, 1),
    "SYNO.Core.FileServ.NFS.SharePrivilege": (1, 1),
    "SYNO.Core.Network.Interface": (1, 1),
    "SYNO.API.Encryption": (1, 1),
    "SYNO.API.Auth.UIConfig": (1, 1),
    "SYNO.API.Auth.Key": (7, 7),
    "SYNO.API.Auth.Type": (1, 1),
    "SYNO.FileStation.Info": (1, 2),
    "SYNO.FileStation.List": (1, 2),
    "SYNO.DSM.Network": (2, 2),
    "SYNO.Storage.CGI.Storage": (1, 1),
    "SYNO.Core.System.Utilization": (1, 1),
    "SYNO.Core.Network": (1, 2),
    "SYNO.Core.SecurityScan.Status": (1, 1),
    "SYNO.Core.Upgrade.Server": (1, 4),
    "SYNO.Core.ExternalDevice.Storage.USB": (1, 1),
    "SYNO.Core.Hardware.FanSpeed": (1, 1),
}


def test_query_all_in_any_case_and_prefixes_list_what_is_served(
    configured: GuestServer, sid: str
) -> None:
    base = configured.url
    for spelling in ("all", "ALL", "All"):
        listed = ok(
            call(base, "query.cgi", api="SYNO.API.Info", version=1, method="query", query=spelling)
        )
        assert set(listed) == set(CATALOGUE), spelling
        assert set(EXPECTED_RANGES) <= set(listed)
    # No query parameter at all lists everything too.
    assert set(ok(call(base, "query.cgi", api="SYNO.API.Info", version=1, method="query"))) == set(
        CATALOGUE
    )
    iscsi = ok(
        call(
            base,
            "query.cgi",
            api="SYNO.API.Info",
            version=1,
            method="query",
            query="SYNO.Core.ISCSI.,SYNO.API.Auth",
        )
    )
    assert set(iscsi) == {n for n in CATALOGUE if n.startswith("SYNO.Core.ISCSI.")} | {
        "SYNO.API.Auth"
    }
    assert {"SYNO.Core.ISCSI.LUN", "SYNO.Core.ISCSI.Target"} <= set(iscsi)
    # Every listed API is served where it is listed: an unknown method of it is 103, not 102.
    for name, entry in listed.items():
        envelope = call(
            base, entry["path"], api=name, version=entry["maxVersion"], method="nope", _sid=sid
        )
        assert err(envelope) == 103, name


def test_api_info(guest: GuestServer) -> None:
    data = ok(
        call(guest.url, "query.cgi", api="SYNO.API.Info", version=1, method="query", query="ALL")
    )
    ranges = {name: (v["minVersion"], v["maxVersion"]) for name, v in data.items()}
    assert {name: ranges[name] for name in EXPECTED_RANGES} == EXPECTED_RANGES
    assert data["SYNO.API.Info"]["path"] == "entry.cgi"  # as recorded; query.cgi serves it too
    assert data["SYNO.Core.FileServ.NFS"]["path"] == "entry.cgi"
    some = ok(
        call(
            guest.url,
            "query.cgi",
            api="SYNO.API.Info",
            version=1,
            method="query",
            query="SYNO.API.Auth,SYNO.DSM.Info,SYNO.No.Such",
        )
    )
    assert set(some) == {"SYNO.API.Auth", "SYNO.DSM.Info"}


def test_common_errors(configured: GuestServer, sid: str) -> None:
    base = configured.url
    assert err(call(base, version=1, method="get")) == 101
    assert err(call(base, api="SYNO.No.Such", version=1, method="get")) == 102
    assert err(call(base, api="SYNO.Core.FileServ.NFS", version=1, _sid=sid)) == 101
    assert err(call(base, api="SYNO.Core.FileServ.NFS", version="x", method="get")) == 101
    assert err(call(base, api="SYNO.Core.FileServ.NFS", version=1, method="nope", _sid=sid)) == 103
    assert err(call(base, api="SYNO.Core.FileServ.NFS", version=4, method="get", _sid=sid)) == 104
    # query.cgi only knows SYNO.API.Info, auth.cgi only SYNO.API.Auth.
    assert (
        err(call(base, "query.cgi", api="SYNO.Core.FileServ.NFS", version=1, method="get")) == 102
    )
    assert err(call(base, "auth.cgi", api="SYNO.Core.FileServ.NFS", version=1, method="get")) == 102
    assert err(call(base, api="SYNO.Core.FileServ.NFS", version=1, method="get")) == 119
    assert (
        err(call(base, api="SYNO.Core.FileServ.NFS", version=1, method="get", _sid="forged")) == 119
    )
    assert err(call(base, api="SYNO.Core.FileServ.NFS", version=1, method="set", _sid=sid)) == 114
    assert (
        err(
            call(
                base,
                api="SYNO.Core.FileServ.NFS",
                version=1,
                method="set",
                enable_nfs="maybe",
                _sid=sid,
            )
        )
        == 120
    )
    nope = requests.get(f"{base}/webapi/nope.cgi", timeout=5)
    assert nope.status_code == 404
    assert nope.json() == {"success": False, "error": {"code": 102}}


# -- Web API: login ---------------------------------------------------------------------------


def test_login_variants(configured: GuestServer) -> None:
    base = configured.url
    data = login(base)
    assert set(data) == {"sid", "did", "is_portal_port"}
    assert data["is_portal_port"] is False
    assert err(login_envelope(base, version=2)) == 103
    assert err(login_envelope(base, version=8)) == 104
    assert err(login_envelope(base, passwd="Wrong1pass")) == 400
    assert err(login_envelope(base, account="nobody")) == 400
    # Token only from v6 with enable_syno_token=yes.
    assert "synotoken" not in login(base, version=3, enable_syno_token="yes")
    assert "synotoken" not in login(base, version=7)
    assert login(base, version=6, enable_syno_token="yes")["synotoken"]
    # entry.cgi also logs in; format=cookie sets the id cookie, usable by later calls.
    http = requests.Session()
    data = ok(
        call(
            base,
            session=http,
            post=True,
            api="SYNO.API.Auth",
            version=7,
            method="login",
            account=ADMIN,
            passwd=PASSWORD,
            format="cookie",
            enable_syno_token="yes",
        )
    )
    assert http.cookies.get("id") == data["sid"] and data["synotoken"]
    assert ok(call(base, session=http, api="SYNO.Core.FileServ.NFS", version=2, method="get"))
    # Cookie `id` sent by hand (synology-csi) and _sid both work; logout ends the session.
    sid = login(base)["sid"]
    assert ok(
        call(
            base, headers={"Cookie": f"id={sid}"}, api="SYNO.DSM.Info", version=2, method="getinfo"
        )
    )
    assert ok(call(base, api="SYNO.DSM.Info", version=2, method="getinfo", _sid=sid))
    assert ok(call(base, api="SYNO.API.Auth", version=1, method="logout", _sid=sid)) is None
    assert err(call(base, api="SYNO.DSM.Info", version=2, method="getinfo", _sid=sid)) == 119
    log = configured.log()
    assert "api=SYNO.API.Auth method=login version=3 -> ok" in log
    assert "-> error 400" in log
    assert PASSWORD not in log and "Wrong1pass" not in log


# -- Web API: services ------------------------------------------------------------------------


def _service(base: str, sid: str, service_id: str, version: int = 2) -> dict[str, Any]:
    data = ok(
        call(
            base,
            api="SYNO.Core.Service",
            version=version,
            method="get",
            additional='["active_status"]',
            _sid=sid,
        )
    )
    return {s["service_id"]: s for s in data["service"]}[service_id]


def test_nfs_get_set_and_service(sid: str, configured: GuestServer) -> None:
    base = configured.url
    nfs = ok(call(base, api="SYNO.Core.FileServ.NFS", version=2, method="get", _sid=sid))
    assert set(nfs) >= {
        "enable_nfs",
        "enable_nfs_v4",
        "enabled_minor_ver",
        "nfs_v4_domain",
        "read_size",
        "write_size",
        "support_encrypt_share",
        "support_major_ver",
        "support_minor_ver",
        "unix_pri_enable",
    }
    assert nfs["enable_nfs"] is False
    assert _service(base, sid, "nfs-server") == {
        "service_id": "nfs-server",
        "display_name": "NFS",
        "enable_status": "disabled",
        "additional": {"active_status": "inactive"},
    }
    assert (
        ok(
            call(
                base,
                post=True,
                api="SYNO.Core.FileServ.NFS",
                version=2,
                method="set",
                enable_nfs="true",
                enable_nfs_v4="true",
                enabled_minor_ver=1,
                _sid=sid,
            )
        )
        is None
    )
    for version in (1, 2, 3):
        nfs = ok(call(base, api="SYNO.Core.FileServ.NFS", version=version, method="get", _sid=sid))
        assert nfs["enable_nfs"] is True and nfs["enable_nfs_v4"] is True
    assert _service(base, sid, "nfs-server", 3)["enable_status"] == "enabled"
    assert _service(base, sid, "nfs-server")["additional"]["active_status"] == "active"
    plain = ok(call(base, api="SYNO.Core.Service", version=2, method="get", _sid=sid))
    assert all("additional" not in s for s in plain["service"])
    ids = {s["service_id"] for s in plain["service"]}
    assert {"nfs-server", "pkg-iscsi", "pkg-synosamba-smbd"} <= ids
    assert _service(base, sid, "pkg-iscsi")["enable_status"] == "enabled"


def test_smb_partial_set_accepted_on_722(sid: str, configured: GuestServer) -> None:
    base = configured.url
    smb = ok(call(base, api="SYNO.Core.FileServ.SMB", version=3, method="get", _sid=sid))
    assert smb["enable_samba"] is True and smb["workgroup"] == "WORKGROUP"
    assert (
        ok(
            call(
                base,
                post=True,
                api="SYNO.Core.FileServ.SMB",
                version=3,
                method="set",
                enable_samba="false",
                _sid=sid,
            )
        )
        is None
    )
    assert _service(base, sid, "pkg-synosamba-smbd")["enable_status"] == "disabled"
    assert (
        ok(
            call(
                base,
                post=True,
                api="SYNO.Core.FileServ.SMB",
                version=1,
                method="set",
                enable_samba="true",
                _sid=sid,
            )
        )
        is None
    )
    assert _service(base, sid, "pkg-synosamba-smbd")["enable_status"] == "enabled"


# -- Web API: storage and system --------------------------------------------------------------


def test_volume(sid: str, configured: GuestServer) -> None:
    base = configured.url
    # without offset, limit and location: DSM's defaults (N4S4/synology-api core_storage.py
    # storage_volume_list sends none of them)
    bare = ok(call(base, api="SYNO.Core.Storage.Volume", version=1, method="list", _sid=sid))
    assert [v["volume_path"] for v in bare["volumes"]] == ["/volume1"]
    data = ok(
        call(
            base,
            api="SYNO.Core.Storage.Volume",
            version=1,
            method="list",
            offset=0,
            limit=-1,
            location="all",
            _sid=sid,
        )
    )
    assert data["total"] == 1
    vol = data["volumes"][0]
    assert vol["volume_path"] == "/volume1" and vol["fs_type"] == "btrfs"
    assert vol["status"] == "normal" and vol["container"] == "internal"
    assert vol["location"] == "internal"
    assert isinstance(vol["size_total_byte"], str) and isinstance(vol["size_free_byte"], str)
    assert int(vol["size_total_byte"]) > int(vol["size_free_byte"]) > 0
    got = ok(
        call(
            base,
            api="SYNO.Core.Storage.Volume",
            version=1,
            method="get",
            volume_path='"/volume1"',
            _sid=sid,
        )
    )
    assert got["volume"]["volume_path"] == "/volume1"
    assert (
        err(
            call(
                base,
                api="SYNO.Core.Storage.Volume",
                version=1,
                method="get",
                volume_path="/volume9",
                _sid=sid,
            )
        )
        == 120
    )


def test_system_and_dsm_info(sid: str, configured: GuestServer) -> None:
    base = configured.url
    info = ok(call(base, api="SYNO.Core.System", version=1, method="info", _sid=sid))
    assert info["firmware_ver"].startswith("DSM 7.2.2-72806")
    assert {"model", "serial", "ram_size", "up_time", "time"} <= set(info)
    net = ok(call(base, api="SYNO.Core.System", version=3, method="info", type="network", _sid=sid))
    assert net["hostname"] == SERVER_NAME
    dsm = ok(call(base, api="SYNO.DSM.Info", version=2, method="getinfo", _sid=sid))
    assert dsm["version"] == "72806" and dsm["version_string"] == "DSM 7.2.2-72806"
    assert {"model", "ram", "serial", "temperature", "time", "uptime"} <= set(dsm)


def test_dsm_version_knob(start_guest: Any) -> None:
    server = start_guest({"SIM_DSM_VERSION": "DSM 7.3.2-86009 Update 1"})
    assert create_admin(server.url).json()["ok"]
    sid = login(server.url)["sid"]
    dsm = ok(call(server.url, api="SYNO.DSM.Info", version=2, method="getinfo", _sid=sid))
    assert dsm["version"] == "86009" and dsm["version_string"] == "DSM 7.3.2-86009 Update 1"
    info = ok(call(server.url, api="SYNO.Core.System", version=1, method="info", _sid=sid))
    assert info["firmware_ver"] == "DSM 7.3.2-86009 Update 1"


# -- Web API: shares --------------------------------------------------------------------------


def _share_create(base: str, sid: str, name: str, vol: str = "/volume1") -> dict[str, Any]:
    info = {
        "name": name,
        "vol_path": vol,
        "desc": "test",
        "enable_recycle_bin": False,
        "enable_share_cow": True,
        "encryption": 0,
    }
    return call(
        base,
        post=True,
        api="SYNO.Core.Share",
        version=1,
        method="create",
        name=json.dumps(name),
        shareinfo=json.dumps(info),
        _sid=sid,
    )


def test_shares(sid: str, configured: GuestServer) -> None:
    base = configured.url
    listed = ok(call(base, api="SYNO.Core.Share", version=1, method="list", _sid=sid))
    assert listed["shares"] == [] and listed["total"] == 0
    assert ok(_share_create(base, sid, "csi-data")) == {"name": "csi-data"}
    assert err(_share_create(base, sid, "CSI-DATA")) == 3301
    assert err(_share_create(base, sid, "bad/name")) == 403
    assert err(_share_create(base, sid, "other", vol="/volume7")) == 403
    share = ok(
        call(base, api="SYNO.Core.Share", version=1, method="get", name='"csi-data"', _sid=sid)
    )
    assert share["name"] == "csi-data" and share["vol_path"] == "/volume1" and share["uuid"]
    listed = ok(call(base, api="SYNO.Core.Share", version=1, method="list", _sid=sid))
    assert [s["name"] for s in listed["shares"]] == ["csi-data"]
    assert (
        err(call(base, api="SYNO.Core.Share", version=1, method="get", name="nope", _sid=sid))
        == 402
    )
    assert (
        err(
            call(
                base,
                post=True,
                api="SYNO.Core.Share",
                version=1,
                method="delete",
                name='["nope"]',
                _sid=sid,
            )
        )
        == 402
    )
    assert (
        ok(
            call(
                base,
                post=True,
                api="SYNO.Core.Share",
                version=1,
                method="delete",
                name='["csi-data"]',
                _sid=sid,
            )
        )
        is None
    )
    assert ok(call(base, api="SYNO.Core.Share", version=1, method="list", _sid=sid))["total"] == 0


# -- Web API: iSCSI ---------------------------------------------------------------------------


def test_iscsi_luns_and_targets(sid: str, configured: GuestServer) -> None:
    base = configured.url

    def lun(method: str, **p: Any) -> dict[str, Any]:
        return call(
            base, post=True, api="SYNO.Core.ISCSI.LUN", version=1, method=method, _sid=sid, **p
        )

    def target(method: str, **p: Any) -> dict[str, Any]:
        return call(
            base, post=True, api="SYNO.Core.ISCSI.Target", version=1, method=method, _sid=sid, **p
        )

    assert ok(target("list", additional='["mapped_lun"]')) == {"targets": []}
    assert ok(lun("list")) == {"luns": []}
    tid = ok(
        target("create", name="k8s-target", auth_type=0, iqn="iqn.2000-01.com.synology:simnas.k8s")
    )["target_id"]
    assert isinstance(tid, int)
    assert err(target("create", name="k8s-target", iqn="iqn.2000-01.com.synology:x")) == 18990744
    got = ok(target("get", target_id=json.dumps(str(tid))))["target"]
    assert got["name"] == "k8s-target" and got["mapped_luns"] == []
    assert err(target("get", target_id='"999"')) == 18990710

    uuid = ok(
        lun(
            "create",
            name='"k8s-lun"',
            size=1 << 30,
            type="BLUN",
            location="/volume1",
            direct_io_pattern=0,
            dev_attribs="[]",
        )
    )["uuid"]
    assert (
        err(lun("create", name='"k8s-lun"', size=1 << 30, type="BLUN", location="/volume1"))
        == 18990538
    )
    assert (
        err(lun("create", name='"huge"', size=1 << 45, type="FILE", location="/volume1"))
        == 18990002
    )
    assert (
        err(lun("create", name='"odd"', size=1 << 30, type="WEIRD", location="/volume1"))
        == 18990500
    )
    info = ok(lun("get", uuid=json.dumps(uuid)))["lun"]
    assert info["name"] == "k8s-lun" and info["size"] == 1 << 30 and info["status"] == "normal"
    assert err(lun("get", uuid='"00000000-0000-0000-0000-000000000000"')) == 18990531
    assert err(lun("map_target", uuid=json.dumps(uuid), target_ids="[999]")) == 18990710
    assert ok(lun("map_target", uuid=json.dumps(uuid), target_ids=f"[{tid}]")) is None
    got = ok(target("get", target_id=json.dumps(str(tid))))["target"]
    assert got["mapped_luns"] == [{"lun_uuid": uuid, "mapping_index": 1}]
    assert ok(lun("delete", uuid=json.dumps(uuid))) is None
    assert err(lun("delete", uuid=json.dumps(uuid))) == 18990531
    assert ok(target("get", target_id=str(tid)))["target"]["mapped_luns"] == []
    assert ok(target("delete", target_id=json.dumps(str(tid)))) is None
    assert err(target("delete", target_id=json.dumps(str(tid)))) == 18990710
    assert ok(target("list")) == {"targets": []}


# -- SIM_REQUIRE_SYNOTOKEN (DSM 7.3.2) --------------------------------------------------------


def test_require_synotoken(start_guest: Any) -> None:
    server = start_guest({"SIM_REQUIRE_SYNOTOKEN": "1"})
    base = server.url
    assert create_admin(base).json()["ok"]
    data = login(base, version=7, enable_syno_token="yes")
    sid, token = data["sid"], data["synotoken"]
    nfs = {"api": "SYNO.Core.FileServ.NFS", "version": 2, "_sid": sid}
    # Reads need no token; writes do.
    assert ok(call(base, method="get", **nfs))["enable_nfs"] is False
    assert err(call(base, post=True, method="set", enable_nfs="true", **nfs)) == 119
    assert (
        err(
            call(
                base,
                post=True,
                method="set",
                enable_nfs="true",
                headers={"X-SYNO-TOKEN": "wrong"},
                **nfs,
            )
        )
        == 119
    )
    assert (
        ok(
            call(
                base,
                post=True,
                method="set",
                enable_nfs="true",
                headers={"X-SYNO-TOKEN": token},
                **nfs,
            )
        )
        is None
    )
    assert (
        ok(call(base, post=True, method="set", enable_nfs="false", SynoToken=token, **nfs)) is None
    )
    # SMB set wants the whole object back.
    smb = {"api": "SYNO.Core.FileServ.SMB", "version": 3, "_sid": sid}
    assert (
        err(
            call(
                base,
                post=True,
                method="set",
                enable_samba="false",
                headers={"X-SYNO-TOKEN": token},
                **smb,
            )
        )
        == 2001
    )
    whole = ok(call(base, method="get", **smb))
    params: dict[str, Any] = {k: json.dumps(v) for k, v in whole.items()}
    params["enable_samba"] = "false"
    assert (
        ok(call(base, post=True, headers={"X-SYNO-TOKEN": token}, method="set", **params, **smb))
        is None
    )
    assert ok(call(base, method="get", **smb))["enable_samba"] is False
    # A v3 session (synology-csi) never got a token: its writes fail, reads work.
    sid3 = login(base)["sid"]
    assert (
        err(
            call(
                base,
                post=True,
                api="SYNO.Core.ISCSI.Target",
                version=1,
                method="create",
                name="t1",
                _sid=sid3,
            )
        )
        == 119
    )
    assert ok(call(base, api="SYNO.Core.ISCSI.Target", version=1, method="list", _sid=sid3))
