"""Stock DSM client libraries, unchanged, against the simulated DSM: N4S4/synology-api
(``synology-api`` on PyPI) over http, which encrypts the parameters of ordinary calls
(``__cIpHeRtExT``) as it does the login's, and the compound form ``SYNO.Entry.Request``."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import requests
from sim_dsm import ADMIN_PASSWORD, ADMIN_USER, Sim
from synology_api.base_api import BaseApi
from synology_api.core_iscsi import LUN, Target
from synology_api.core_share import Share
from synology_api.core_storage import CoreStorage
from synology_api.core_sys_info import SysInfo
from synology_dsm import SynologyDSM

from tests.sim.test_guest_api import call, err, ok


def _client(sim: Sim, kind: type[BaseApi], *, new: bool = True, **options: Any) -> Any:
    """One of synology-api's classes, logged in over http (parameters encrypted)."""
    if new:
        # the library keeps one login per process (BaseApi.shared_session): each test's DSM
        # is a new one
        BaseApi.shared_session = None
    url = urlsplit(sim.url)
    return kind(
        url.hostname,
        str(url.port),
        ADMIN_USER,
        ADMIN_PASSWORD,
        secure=False,
        dsm_version=7,
        debug=False,
        **options,
    )


def _share_api(sim: Sim) -> Share:
    client: Share = _client(sim, Share)
    return client


def _shares(sim: Sim, sid: str) -> list[str]:
    listed = ok(call(sim.url, api="SYNO.Core.Share", version=1, method="list", _sid=sid))
    return [s["name"] for s in listed["shares"]]


def test_stock_client_creates_a_shared_folder_with_encrypted_parameters(sim: Sim) -> None:
    api = _share_api(sim)
    sent: list[dict[str, Any]] = []
    post = api.session._post

    def spy(url: str, data: Any = None, *args: Any, **kwargs: Any) -> Any:
        sent.append(dict(data or {}))
        return post(url, data, *args, **kwargs)

    api.session._post = spy  # type: ignore[method-assign]
    answer = api.create_folder("crypted", "/volume1", desc="made over http")
    assert answer["success"] is True, answer
    # what went on the wire: shareinfo only inside the cipher text
    create = next(d for d in sent if d.get("method") == "create")
    assert "__cIpHeRtExT" in create and "shareinfo" not in create
    sid = api.session.sid
    assert "crypted" in _shares(sim, sid)
    got = ok(
        call(sim.url, api="SYNO.Core.Share", version=1, method="get", name="crypted", _sid=sid)
    )
    assert got["desc"] == "made over http" and got["vol_path"] == "/volume1"


def test_parameters_that_do_not_decrypt_are_refused(sim: Sim) -> None:
    api = _share_api(sim)
    sid = api.session.sid
    bogus = json.dumps({"rsa": "AAAA", "aes": "AAAA"})
    code = err(
        call(
            sim.url,
            post=True,
            api="SYNO.Core.Share",
            version=1,
            method="create",
            name="x",
            __cIpHeRtExT=bogus,
            _sid=sid,
        )
    )
    assert code == 120
    assert "x" not in _shares(sim, sid)


def test_compound_request_runs_each_call_under_the_session(sim: Sim) -> None:
    api = _share_api(sim)
    sid = api.session.sid
    compound = [
        {"api": "SYNO.Core.System", "method": "info", "version": 1},
        {"api": "SYNO.Core.Share", "method": "get", "version": 1, "name": "no-such-share"},
        {"api": "SYNO.Core.FileServ.NFS", "method": "get", "version": 2},
    ]
    resp = requests.post(
        f"{sim.url}/webapi/entry.cgi",
        data={
            "api": "SYNO.Entry.Request",
            "method": "request",
            "version": "1",
            "stop_when_error": "false",
            "compound": json.dumps(compound),
            "_sid": sid,
        },
        timeout=10,
    )
    data = ok(resp.json())
    assert data["has_fail"] is True
    results = data["result"]
    assert [r["api"] for r in results] == [c["api"] for c in compound]
    assert results[0]["success"] is True and "firmware_ver" in results[0]["data"]
    assert results[1] == {
        "api": "SYNO.Core.Share",
        "method": "get",
        "version": 1,
        "success": False,
        "error": {"code": 402},
    }
    assert results[2]["success"] is True and "enable_nfs" in results[2]["data"]
    stopped = requests.post(
        f"{sim.url}/webapi/entry.cgi",
        data={
            "api": "SYNO.Entry.Request",
            "method": "request",
            "version": "1",
            "stop_when_error": "true",
            "compound": json.dumps(compound),
            "_sid": sid,
        },
        timeout=10,
    ).json()
    assert len(ok(stopped)["result"]) == 2


def test_parameter_forms_and_defaults_of_stock_clients(sim: Sim) -> None:
    """What N4S4/synology-api sends: LUNs deleted by a ``uuids`` list with ``uuid`` empty,
    LUNs mapped from the target's side by a ``lun_uuids`` list, volume lists without
    offset/limit/location, system info of ``type=storage_v2``."""
    luns: LUN = _client(sim, LUN)
    targets: Target = _client(sim, Target, new=False)
    sid = luns.session.sid
    made = [
        luns.create(f"lun-{i}", "BLUN", "/volume1", 1 << 30)["data"]["uuid"]  # type: ignore[index]
        for i in range(3)
    ]
    tid = targets.create("tgt-forms", "iqn.2000-01.com.synology:sim.tgt-forms")["data"]["target_id"]  # type: ignore[index]
    assert targets.map_lun(tid, made[:2])["success"] is True
    got = ok(
        call(
            sim.url, api="SYNO.Core.ISCSI.Target", version=1, method="get", target_id=tid, _sid=sid
        )
    )
    assert [m["lun_uuid"] for m in got["target"]["mapped_luns"]] == made[:2]
    assert targets.unmap_lun(tid, made[1])["success"] is True
    assert luns.delete(made[:2])["success"] is True
    left = ok(call(sim.url, api="SYNO.Core.ISCSI.LUN", version=1, method="list", _sid=sid))
    assert [lun["uuid"] for lun in left["luns"]] == [made[2]]
    got = ok(
        call(
            sim.url, api="SYNO.Core.ISCSI.Target", version=1, method="get", target_id=tid, _sid=sid
        )
    )
    assert got["target"]["mapped_luns"] == []
    volumes = _client(sim, CoreStorage, new=False).storage_volume_list()
    assert [v["volume_path"] for v in volumes["data"]["volumes"]] == ["/volume1"]
    storage = _client(sim, SysInfo, new=False).get_volume_info()
    assert storage["data"]["vol_info"][0]["volume"] == "volume_1"


async def test_home_assistant_client_polls_every_module_and_backs_up_through_file_station(
    sim_factory: Callable[..., Sim], tmp_path: Path
) -> None:
    """py-synologydsm-api (Home Assistant's Synology DSM integration), unchanged: login, one
    update of every module it polls, then its backup agent's File Station round trip (an upload
    from an async source, which aiohttp streams without a Content-Length; list; download;
    delete)."""
    volume = tmp_path / "volume1"
    sim = sim_factory(SIM_VOLUME_ROOT=str(volume))
    url = urlsplit(sim.url)
    assert url.hostname and url.port
    payload = os.urandom(300_000)

    async def source() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    async with aiohttp.ClientSession() as http:
        dsm = SynologyDSM(http, url.hostname, url.port, ADMIN_USER, ADMIN_PASSWORD, timeout=120)
        assert await dsm.login()
        for module in (
            dsm.utilisation,
            dsm.storage,
            dsm.security,
            dsm.upgrade,
            dsm.external_usb,
            dsm.share,
            dsm.system,
            dsm.hardware,
            dsm.information,
            dsm.network,
        ):
            assert module is not None
        await dsm.update(with_information=True, with_network=True)
        assert dsm.information.model == "VirtualDSM"
        assert isinstance(dsm.utilisation.cpu_5min_load, int)
        assert isinstance(dsm.utilisation.cpu_15min_load, int)
        assert dsm.security.status == "safe"
        assert dsm.upgrade.update_available is False
        assert dsm.storage.volumes_ids == ["volume_1"] and dsm.storage.disks_ids == ["sata1"]
        assert dsm.external_usb.get_devices == {}
        assert dsm.network.hostname
        sid = ok(
            call(sim.url, "entry.cgi", api="SYNO.API.Auth", version=6, method="login",
                 account=ADMIN_USER, passwd=ADMIN_PASSWORD)
        )["sid"]  # fmt: skip
        shareinfo = json.dumps({"name": "backups", "vol_path": "/volume1"})
        ok(call(sim.url, api="SYNO.Core.Share", version=1, method="create", name="backups",
                shareinfo=shareinfo, _sid=sid))  # fmt: skip
        assert await dsm.file.upload_file("/backups", "ha.tar", source()) is True
        assert (volume / "backups" / "ha.tar").read_bytes() == payload
        folders = await dsm.file.get_shared_folders()
        assert folders is not None and "backups" in [f.name for f in folders]
        files = await dsm.file.get_files("/backups")
        assert files is not None and [(f.name, f.additional.size) for f in files] == [  # type: ignore[union-attr]
            ("ha.tar", len(payload))
        ]
        target = tmp_path / "ha.tar"
        assert await dsm.file.download_file("/backups", "ha.tar", str(target)) is True
        assert target.read_bytes() == payload
        assert await dsm.file.delete_file("/backups", "ha.tar") is True
        assert not (volume / "backups" / "ha.tar").exists()
        await dsm.logout()
