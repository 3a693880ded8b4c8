"""DsmClient and DsmSession against the real simulated DSM."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from sim_dsm import ADMIN_PASSWORD, ADMIN_USER, Sim

from vdsmlib.errors import VdsmError
from vdsmlib.webapi import DsmClient, WebApiError


def test_api_info_lists_auth_and_file_services(sim: Sim) -> None:
    with DsmClient(sim.url) as dsm:
        info = dsm.api_info()
        only_auth = dsm.api_info("SYNO.API.Auth")
    assert info["SYNO.API.Auth"]["maxVersion"] == 7
    assert "SYNO.Core.FileServ.NFS" in info
    assert set(only_auth) == {"SYNO.API.Auth"}


def test_login_v7_gets_a_synotoken_and_logs_out(sim: Sim) -> None:
    with DsmClient(sim.url) as dsm:
        session = dsm.login(ADMIN_USER, ADMIN_PASSWORD)
        assert session.auth_version == 7
        assert session.synotoken
        assert sim.state()["sessions"] == 2  # the admin form's own session plus ours
        assert session.dsm_info()["version_string"] == "DSM 7.2.2-72806"
        session.logout()
        session.logout()  # idempotent
        assert sim.state()["sessions"] == 1
        with pytest.raises(WebApiError, match="logged out"):
            session.dsm_info()


def test_login_v3_uses_format_sid_and_no_token(sim: Sim) -> None:
    with DsmClient(sim.url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD, syno_token=False) as s:
        assert s.auth_version == 3
        assert s.synotoken is None
        system = s.system_info()
        assert system["firmware_ver"].startswith("DSM 7.2.2")
        assert s.system_info("network")["hostname"] == "vdsm-test"
        with dsm.login(ADMIN_USER, ADMIN_PASSWORD, version=3) as explicit:
            assert explicit.auth_version == 3
    assert sim.state()["sessions"] == 1


def test_bad_password_is_error_400_with_meaning_and_no_password(sim: Sim) -> None:
    wrong = "Wr0ngPassw0rd!"
    with DsmClient(sim.url) as dsm, pytest.raises(WebApiError) as exc:
        dsm.login(ADMIN_USER, wrong)
    err = exc.value
    assert isinstance(err, VdsmError)
    assert (err.code, err.api, err.method) == (400, "SYNO.API.Auth", "login")
    assert "400: no such account or wrong password" in str(err)
    assert repr(ADMIN_USER) in str(err)
    assert wrong not in str(err) and wrong not in repr(err.args)
    assert err.meaning == "no such account or wrong password"


def test_login_below_v3_is_refused(sim: Sim) -> None:
    with DsmClient(sim.url) as dsm, pytest.raises(WebApiError) as exc:
        dsm.login(ADMIN_USER, ADMIN_PASSWORD, version=2)
    assert exc.value.code == 103


def test_session_logs_in_again_once_on_119(sim: Sim) -> None:
    with DsmClient(sim.url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as session:
        old_sid = session.sid
        assert old_sid is not None
        # End the session behind the client's back, as a DSM restart or timeout would.
        envelope = dsm.call(
            "entry.cgi",
            {"api": "SYNO.API.Auth", "version": "1", "method": "logout", "_sid": old_sid},
            api="SYNO.API.Auth",
            method="logout",
        )
        assert envelope["success"]
        raw = dsm.call(
            "entry.cgi",
            {"api": "SYNO.Core.FileServ.NFS", "version": "1", "method": "get", "_sid": old_sid},
            api="SYNO.Core.FileServ.NFS",
            method="get",
        )
        assert raw == {"success": False, "error": {"code": 119}}

        nfs = session.nfs_get()

        assert "enable_nfs" in nfs
        assert session.sid not in (None, old_sid)


def test_session_gives_up_after_one_relogin(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory(SIM_REQUIRE_SYNOTOKEN="1")
    with (
        DsmClient(sim.url) as dsm,
        dsm.login(ADMIN_USER, ADMIN_PASSWORD, syno_token=False) as session,
        pytest.raises(WebApiError) as exc,
    ):
        session.nfs_set(enable_nfs=True)
    assert exc.value.code == 119
    assert "after logging in again" in str(exc.value)
    assert "X-SYNO-TOKEN" in str(exc.value)


def test_typed_helpers(sim: Sim) -> None:
    with DsmClient(sim.url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as s:
        (volume,) = s.volumes()
        assert (volume["volume_path"], volume["fs_type"]) == ("/volume1", "btrfs")

        services = s.services(["nfs-server", "pkg-iscsi", "no-such-service"])
        assert set(services) == {"nfs-server", "pkg-iscsi"}
        assert services["nfs-server"]["additional"]["active_status"] == "inactive"

        sent = s.nfs_set(enable_nfs=True, enable_nfs_v4=True)
        assert not any(k.startswith("support_") for k in sent)
        assert s.nfs_get()["enable_nfs_v4"] is True
        assert s.services(["nfs-server"])["nfs-server"]["enable_status"] == "enabled"
        s.smb_set(enable_samba=False)
        assert s.smb_get()["enable_samba"] is False
        with pytest.raises(WebApiError, match="no settings"):
            s.smb_set(enable_samba_typo=True)

        s.share_create("data", desc="for tests")
        assert [sh["name"] for sh in s.share_list()] == ["data"]
        with pytest.raises(WebApiError) as exc:
            s.share_create("data")
        assert exc.value.code == 3301
        assert "3301: share already exists" in str(exc.value)
        s.share_delete("data")
        assert s.share_list() == []

        target_id = s.target_create("t1")
        lun = s.lun_create("lun1", 1024**3)
        s.map_target(lun, [target_id])
        (target,) = s.target_list()
        assert target["iqn"].startswith("iqn.")
        assert [m["lun_uuid"] for m in target["mapped_luns"]] == [lun]
        assert [x["name"] for x in s.lun_list()] == ["lun1"]
        with pytest.raises(WebApiError) as exc:
            s.lun_create("lun1", 1024**3)
        assert "18990538: duplicated LUN name" in str(exc.value)
        s.lun_delete(lun)
        s.target_delete(target_id)
        assert s.lun_list() == [] and s.target_list() == []


def test_unknown_api_is_102_before_any_call(sim: Sim) -> None:
    with DsmClient(sim.url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as s:
        with pytest.raises(WebApiError) as exc:
            s.request("SYNO.No.Such", "get")
        assert exc.value.code == 102
        with pytest.raises(WebApiError) as exc:
            s.request("SYNO.Core.FileServ.NFS", "get", version=(5, 9))
        assert exc.value.code == 104
        assert "versions 1-3" in str(exc.value)


def test_http_errors_and_non_json_answers(sim: Sim) -> None:
    with DsmClient(sim.url) as dsm:
        with pytest.raises(WebApiError) as exc:
            dsm.call("nothing.cgi", {}, api="X", method="y")
        assert exc.value.status == 404
        assert f"{sim.url}/webapi/nothing.cgi" in str(exc.value)
    # The web UI root answers HTML with HTTP 200, like virtual-dsm's "please wait" page.
    with DsmClient(sim.url) as dsm, pytest.raises(WebApiError) as exc:
        dsm.call("../", {}, api="SYNO.API.Info", method="query", http_method="GET")
    assert exc.value.status == 200
    assert "not JSON" in str(exc.value)


def test_connection_errors_are_wrapped() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with DsmClient(f"http://127.0.0.1:{port}", timeout=2) as dsm, pytest.raises(WebApiError) as e:
        dsm.api_info()
    assert "cannot reach DSM" in str(e.value)
    assert isinstance(e.value.__cause__, requests.ConnectionError)


def test_shared_requests_session_is_not_closed(sim: Sim) -> None:
    http = requests.Session()
    with DsmClient(sim.url, session=http) as dsm:
        dsm.api_info()
    # Still usable: the client did not own it.
    assert http.get(f"{sim.url}/sim/state", timeout=5).status_code == 200
    http.close()
    with pytest.raises(WebApiError, match="closed"):
        dsm.api_info()
