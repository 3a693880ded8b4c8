"""Replays the Synology CSI driver's provisioning against a fresh simulated DSM, call by call.

Each call is the one the driver makes (SynologyOpenSource/synology-csi, files and functions cited
at each call: api, method, version, parameters encoded as the driver encodes them, GET on
``webapi/entry.cgi`` with the ``id`` cookie), in the order of the driver's service functions
(pkg/dsm/service/dsm.go, share_volume.go; pkg/driver/nodeserver.go for the node's share rules).
Every answer is checked against the Go struct the driver decodes it into (names and JSON types,
written below as data with the struct's file and name) and every error against the code the
driver maps (iscsi.go errCodeMapping, share.go shareErrCodeMapping).
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.sim.test_guest_api import ADMIN, PASSWORD, SERVER_NAME, create_admin

# -- the Go structs, as data ------------------------------------------------------------------
# A struct is {json name: type}; a type is "string", "int", "int64", "uint64", "bool", a struct,
# or ["list", type]. Names ending in "?" may be absent (Go leaves the zero value); every other
# name must be present, so the driver gets DSM's value and not Go's zero. Extra fields are
# ignored, as encoding/json does.

# pkg/dsm/webapi/dsmwebapi.go Login: LoginResp
LOGIN_RESP = {"sid": "string"}
# pkg/dsm/webapi/storage.go: VolInfo
VOL_INFO = {
    "display_name": "string",
    "volume_path": "string",
    "status": "string",
    "fs_type": "string",
    "size_total_byte": "string",
    "size_free_byte": "string",
    "container": "string",
    "location": "string",
}
VOL_INFOS = {"volumes": ["list", VOL_INFO]}  # storage.go VolumeList: VolInfos
VOL_GET = {"volume": VOL_INFO}  # storage.go VolumeGet: Info
# pkg/dsm/webapi/iscsi.go: LunDevAttrib, LunInfo, MappedLun, ConncetedSession, NetworkPortal,
# TargetInfo, SnapshotInfo
LUN_DEV_ATTRIB = {"dev_attrib": "string", "enable": "int"}
LUN_INFO = {
    "name": "string",
    "uuid": "string",
    "type": "int",
    "location": "string",
    "size": "uint64",
    "allocated_size": "uint64",
    "status": "string",
    "flashcache_status": "string",
    "is_action_locked": "bool",
    "dev_attribs": ["list", LUN_DEV_ATTRIB],
}
TARGET_INFO = {
    "name": "string",
    "iqn": "string",
    "status": "string",
    "max_sessions": "int",
    "mapped_luns": ["list", {"lun_uuid": "string", "mapping_index": "int"}],
    "connected_sessions": ["list", {"iqn": "string", "ip": "string"}],
    "network_portals": ["list", {"controller_id": "int", "interface_name": "string"}],
    "target_id": "int",
}
SNAPSHOT_INFO = {
    "name": "string",
    "uuid": "string",
    "parent_uuid": "string",
    "status": "string",
    "total_size": "int64",
    "create_time": "int64",
    "root_path": "string",
}
LUN_INFOS = {"luns": ["list", LUN_INFO]}  # iscsi.go LunList: LunInfos
LUN_CREATE_RESP = {"uuid": "string"}  # iscsi.go LunCreate: LunCreateResp
LUN_GET = {"lun": LUN_INFO}  # iscsi.go LunGet: Info
LUN_CLONE_RESP = {"dst_lun_uuid": "string"}  # iscsi.go LunClone: LunCloneResp
TARGET_INFOS = {"targets": ["list", TARGET_INFO]}  # iscsi.go TargetList: TargetInfos
TARGET_GET = {"target": TARGET_INFO}  # iscsi.go TargetGet: Info
TRG_CREATE_RESP = {"target_id": "int"}  # iscsi.go TargetCreate: TrgCreateResp
SNAPSHOT_CREATE_RESP = {"snapshot_uuid": "string"}  # iscsi.go SnapshotCreate
SNAPSHOT_GET = {"snapshot": SNAPSHOT_INFO}  # iscsi.go SnapshotGet: Info
SNAPSHOT_INFOS = {"snapshots": ["list", SNAPSHOT_INFO]}  # iscsi.go SnapshotList: Infos
SNAPSHOT_CLONE_RESP = {"cloned_lun_uuid": "string"}  # iscsi.go SnapshotClone
EMPTY: dict[str, Any] = {}  # &struct{}{}
# pkg/dsm/webapi/share.go: ShareInfo, ShareSnapshotInfo, SharePermission, PrivilegeRule, NfsInfo
SHARE_INFO = {
    "name": "string",
    "vol_path": "string",
    "desc": "string",
    "enable_share_cow": "bool",
    "enable_recycle_bin": "bool",
    "recycle_bin_admin_only": "bool",
    "encryption": "int",
    "share_quota?": "int64",
    "quota_value": "int64",
    "support_snapshot": "bool",
    "uuid": "string",
    "name_org?": "string",
}
SHARE_INFOS = {"shares": ["list", SHARE_INFO]}  # share.go ShareList: ShareInfos
SHARE_CREATE_RESP = {"name": "string"}  # share.go ShareClone: ShareCreateResp
SHARE_SNAPSHOT_INFO = {
    "ruuid": "string",
    "time": "string",
    "desc": "string",
    "snap_size": "string",
    "lock": "bool",
    "schedule_snapshot": "bool",
}
SHARE_SNAPSHOT_INFOS = {"snapshots": ["list", SHARE_SNAPSHOT_INFO], "total": "int"}
SHARE_PERMISSION = {
    "name": "string",
    "is_readonly": "bool",
    "is_writable": "bool",
    "is_deny": "bool",
    "is_custom?": "bool",
    "is_admin?": "bool",
}
SHARE_PERMISSIONS = {"items": ["list", SHARE_PERMISSION]}  # share.go SharePermissionList
PRIVILEGE_RULE = {
    "async": "bool",
    "client": "string",
    "crossmnt": "bool",
    "insecure": "bool",
    "privilege": "string",
    "root_squash": "string",
    "security_flavor": {
        "kerberos": "bool",
        "kerberos_integrity": "bool",
        "kerberos_privacy": "bool",
        "sys": "bool",
    },
}
SHARE_PRIVILEGE = {"share_name": "string", "rule": ["list", PRIVILEGE_RULE]}
NFS_INFO = {
    "enable_nfs": "bool",
    "enable_nfs_v4": "bool",
    "nfs_v4_domain": "string",
    "read_size": "int",
    "support_encrypt_share": "int",
    "support_major_ver": "int",
    "support_minor_ver": "int",
    "unix_pri_enable": "bool",
    "write_size": "int",
}
# pkg/dsm/webapi/systeminfo.go: DsmInfo, DsmSysInfo, NetworkInterface
DSM_INFO = {"hostname": "string"}
DSM_SYS_INFO = {"model": "string", "firmware_ver": "string", "serial": "string"}
NETWORK_INTERFACE = {
    "ifname": "string",
    "ip": "string",
    "mask": "string",
    "speed": "int",
    "status": "string",
    "type": "string",
    "use_dhcp": "bool",
}
# Go decodes into a string, []T or []map: the shape is the JSON type itself.
STRING = "string"
NETWORK_INTERFACES = ["list", NETWORK_INTERFACE]
FAILED_SNAPSHOTS = ["list", {}]  # share.go ShareSnapshotDelete: []map[string]interface{}


def conforms(value: Any, shape: Any, where: str = "data") -> None:
    """Assert ``value`` decodes into ``shape`` as Go's encoding/json would, fields present."""
    if shape == "string":
        assert isinstance(value, str), f"{where}: {value!r} is not a JSON string"
    elif shape in ("int", "int64"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r}"
    elif shape == "uint64":
        assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, where
    elif shape == "bool":
        assert isinstance(value, bool), f"{where}: {value!r} is not a JSON bool"
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{where}: {value!r} is not a JSON array"
        for i, item in enumerate(value):
            conforms(item, shape[1], f"{where}[{i}]")
    else:
        assert isinstance(value, dict), f"{where}: {value!r} is not a JSON object"
        for name, field_shape in shape.items():
            key = name.rstrip("?")
            if key in value:
                conforms(value[key], field_shape, f"{where}.{key}")
            else:
                assert name.endswith("?"), f"{where}: no {key!r} in {sorted(value)}"


# -- the driver's client: pkg/dsm/webapi/dsmwebapi.go -----------------------------------------


class DsmError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"DSM Api error. Error code:{code}")
        self.code = code


def go_quote(text: str) -> str:
    """strconv.Quote: the driver sends most string parameters as JSON strings."""
    return json.dumps(text)


class Driver:
    """The CSI driver's ``webapi.DSM``: GET ``webapi/<cgi>`` with url.Values, cookie ``id``."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.sid = ""
        self.http = requests.Session()
        self.calls: list[str] = []

    def send(self, params: dict[str, str], shape: Any, cgi: str = "webapi/entry.cgi") -> Any:
        """dsmwebapi.go sendRequest: re-login once on 105, 106 or 119."""
        try:
            return self._send(params, shape, cgi)
        except DsmError as err:
            if err.code not in (105, 106, 119):
                raise
            self.login()
            return self._send(params, shape, cgi)

    def _send(self, params: dict[str, str], shape: Any, cgi: str) -> Any:
        """dsmwebapi.go sendRequestWithoutConnectionCheck."""
        self.calls.append(f"{params['api']}.{params['method']}")
        cookies = {"id": self.sid} if self.sid else {}
        resp = self.http.get(f"{self.base}/{cgi}", params=params, cookies=cookies, timeout=10)
        assert resp.status_code in (200, 302), resp.status_code
        envelope = resp.json()
        if not envelope["success"]:
            raise DsmError(int(envelope["error"]["code"]))
        data = envelope.get("data")
        if data is not None:
            conforms(data, shape, f"{params['api']}.{params['method']}")
        return data

    def login(self) -> None:
        """dsmwebapi.go Login."""
        params = {
            "api": "SYNO.API.Auth",
            "method": "login",
            "version": "3",
            "account": ADMIN,
            "passwd": PASSWORD,
            "format": "sid",
        }
        data = self._send(params, LOGIN_RESP, "webapi/auth.cgi")
        self.sid = data["sid"]

    def logout(self) -> None:
        """dsmwebapi.go Logout."""
        self._send(
            {"api": "SYNO.API.Auth", "method": "logout", "version": "1"}, EMPTY, "webapi/entry.cgi"
        )
        self.sid = ""

    @staticmethod
    def api(api: str, method: str, version: str = "1", **params: str) -> dict[str, str]:
        return {"api": api, "method": method, "version": version, **params}

    # storage.go
    def volume_list(self) -> list[dict[str, Any]]:
        p = self.api("SYNO.Core.Storage.Volume", "list", offset="0", limit="-1", location="all")
        return list(self.send(p, VOL_INFOS)["volumes"])

    def volume_get(self, path: str) -> dict[str, Any]:
        p = self.api("SYNO.Core.Storage.Volume", "get", volume_path=go_quote(path))
        return dict(self.send(p, VOL_GET)["volume"])

    # systeminfo.go
    def dsm_info_get(self) -> dict[str, Any]:
        return dict(self.send(self.api("SYNO.Core.System", "info", type="network"), DSM_INFO))

    def dsm_system_info_get(self) -> dict[str, Any]:
        return dict(self.send(self.api("SYNO.Core.System", "info"), DSM_SYS_INFO))

    def network_interface_list(self, relay_node: str = "") -> list[dict[str, Any]]:
        extra = {"relay_node": relay_node} if relay_node else {}
        p = self.api("SYNO.Core.Network.Interface", "list", **extra)
        return [
            i
            for i in self.send(p, NETWORK_INTERFACES)
            if "eth" in i["ifname"] or "bond" in i["ifname"]
        ]

    # iscsi.go
    ADDITIONAL_LUN = '["allocated_size","status","flashcache_status", "is_action_locked"]'
    ADDITIONAL_TARGET = '["mapped_lun", "connected_sessions"]'

    def lun_list(self) -> list[dict[str, Any]]:
        types = (
            '["BLOCK", "FILE", "THIN", "ADV", "SINK", "CINDER", "CINDER_BLUN", '
            '"CINDER_BLUN_THICK", "BLUN", "BLUN_THICK", "BLUN_SINK", "BLUN_THICK_SINK"]'
        )
        p = self.api("SYNO.Core.ISCSI.LUN", "list", types=types, additional=self.ADDITIONAL_LUN)
        return list(self.send(p, LUN_INFOS)["luns"])

    def lun_create(
        self,
        name: str,
        size: int,
        lun_type: str,
        location: str,
        description: str,
        dev_attribs: list[dict[str, Any]],
    ) -> str:
        p = self.api(
            "SYNO.Core.ISCSI.LUN",
            "create",
            name=go_quote(name),
            size=str(size),
            type=lun_type,
            location=location,
            description=description,
            dev_attribs=json.dumps(dev_attribs, separators=(",", ":")),
        )
        return str(self.send(p, LUN_CREATE_RESP)["uuid"])

    def lun_update(self, uuid: str, new_size: int) -> None:
        self.send(
            self.api("SYNO.Core.ISCSI.LUN", "set", uuid=go_quote(uuid), new_size=str(new_size)),
            EMPTY,
        )

    def lun_get(self, uuid: str) -> dict[str, Any]:
        p = self.api(
            "SYNO.Core.ISCSI.LUN", "get", uuid=go_quote(uuid), additional=self.ADDITIONAL_LUN
        )
        return dict(self.send(p, LUN_GET)["lun"])

    def lun_clone(self, name: str, src_uuid: str, location: str) -> str:
        p = self.api(
            "SYNO.Core.ISCSI.LUN",
            "clone",
            src_lun_uuid=go_quote(src_uuid),
            dst_lun_name=go_quote(name),
            dst_location=go_quote(location),
        )
        return str(self.send(p, LUN_CLONE_RESP)["dst_lun_uuid"])

    def target_list(self) -> list[dict[str, Any]]:
        p = self.api("SYNO.Core.ISCSI.Target", "list", additional=self.ADDITIONAL_TARGET)
        return list(self.send(p, TARGET_INFOS)["targets"])

    def target_get(self, target_id: str) -> dict[str, Any]:
        p = self.api(
            "SYNO.Core.ISCSI.Target",
            "get",
            target_id=go_quote(target_id),
            additional=self.ADDITIONAL_TARGET,
        )
        return dict(self.send(p, TARGET_GET)["target"])

    def target_set(self, target_id: str, max_sessions: int) -> None:
        p = self.api(
            "SYNO.Core.ISCSI.Target",
            "set",
            target_id=go_quote(target_id),
            max_sessions=str(max_sessions),
        )
        self.send(p, EMPTY)

    def target_create(self, name: str, iqn: str) -> str:
        p = self.api("SYNO.Core.ISCSI.Target", "create", name=name, auth_type="0", iqn=iqn)
        return str(self.send(p, TRG_CREATE_RESP)["target_id"])

    def lun_map_target(self, target_ids: list[str], lun_uuid: str) -> None:
        p = self.api(
            "SYNO.Core.ISCSI.LUN",
            "map_target",
            uuid=go_quote(lun_uuid),
            target_ids=f"[{','.join(target_ids)}]",
        )
        self.send(p, EMPTY)

    def lun_delete(self, uuid: str) -> None:
        self.send(self.api("SYNO.Core.ISCSI.LUN", "delete", uuid=go_quote(uuid)), EMPTY)

    def target_delete(self, target_id: str) -> None:
        self.send(
            self.api("SYNO.Core.ISCSI.Target", "delete", target_id=go_quote(target_id)), EMPTY
        )

    def snapshot_create(
        self, lun_uuid: str, name: str, description: str, taken_by: str, is_locked: bool
    ) -> str:
        p = self.api(
            "SYNO.Core.ISCSI.LUN",
            "take_snapshot",
            src_lun_uuid=go_quote(lun_uuid),
            snapshot_name=go_quote(name),
            description=go_quote(description),
            taken_by=go_quote(taken_by),
            is_locked=str(is_locked).lower(),
            is_app_consistent="false",
        )
        return str(self.send(p, SNAPSHOT_CREATE_RESP)["snapshot_uuid"])

    def snapshot_delete(self, snapshot_uuid: str) -> None:
        self.send(
            self.api(
                "SYNO.Core.ISCSI.LUN", "delete_snapshot", snapshot_uuid=go_quote(snapshot_uuid)
            ),
            EMPTY,
        )

    def snapshot_get(self, snapshot_uuid: str) -> dict[str, Any]:
        p = self.api("SYNO.Core.ISCSI.LUN", "get_snapshot", snapshot_uuid=go_quote(snapshot_uuid))
        return dict(self.send(p, SNAPSHOT_GET)["snapshot"])

    def snapshot_list(self, lun_uuid: str) -> list[dict[str, Any]]:
        p = self.api("SYNO.Core.ISCSI.LUN", "list_snapshot", src_lun_uuid=go_quote(lun_uuid))
        return list(self.send(p, SNAPSHOT_INFOS)["snapshots"])

    def snapshot_clone(self, name: str, src_lun_uuid: str, snapshot_uuid: str) -> str:
        p = self.api(
            "SYNO.Core.ISCSI.LUN",
            "clone_snapshot",
            src_lun_uuid=go_quote(src_lun_uuid),
            snapshot_uuid=go_quote(snapshot_uuid),
            cloned_lun_name=go_quote(name),
        )
        return str(self.send(p, SNAPSHOT_CLONE_RESP)["cloned_lun_uuid"])

    # share.go
    ADDITIONAL_SHARE = (
        '["encryption", "enable_share_cow", "recyclebin", "support_snapshot", "share_quota"]'
    )

    def share_get(self, name: str) -> dict[str, Any]:
        p = self.api(
            "SYNO.Core.Share", "get", additional=self.ADDITIONAL_SHARE, name=go_quote(name)
        )
        return dict(self.send(p, SHARE_INFO))

    def share_list(self) -> list[dict[str, Any]]:
        p = self.api("SYNO.Core.Share", "list", additional=self.ADDITIONAL_SHARE)
        return list(self.send(p, SHARE_INFOS)["shares"])

    def share_create(self, name: str, info: dict[str, Any]) -> None:
        p = self.api("SYNO.Core.Share", "create", name=go_quote(name), shareinfo=json.dumps(info))
        self.send(p, EMPTY)

    def share_clone(self, name: str, snapshot: str, info: dict[str, Any]) -> str:
        extra = {"snapshot": go_quote(snapshot)} if snapshot else {}
        p = self.api(
            "SYNO.Core.Share", "clone", name=go_quote(name), **extra, shareinfo=json.dumps(info)
        )
        return str(self.send(p, SHARE_CREATE_RESP)["name"])

    def share_delete(self, name: str) -> None:
        self.send(self.api("SYNO.Core.Share", "delete", name=f"[{go_quote(name)}]"), EMPTY)

    def share_set(self, name: str, update: dict[str, Any]) -> None:
        self.send(
            self.api("SYNO.Core.Share", "set", name=go_quote(name), shareinfo=json.dumps(update)),
            EMPTY,
        )

    def set_share_quota(self, share: dict[str, Any], size_mb: int) -> None:
        """share.go SetShareQuota: ShareUpdateInfo{name, vol_path, share_quota}."""
        self.share_set(
            share["name"],
            {"name": share["name"], "vol_path": share["vol_path"], "share_quota": size_mb},
        )

    def share_snapshot_create(self, share_name: str, desc: str, is_locked: bool) -> str:
        p = self.api(
            "SYNO.Core.Share.Snapshot",
            "create",
            name=go_quote(share_name),
            snapinfo=json.dumps({"desc": desc, "lock": is_locked}),
        )
        return str(self.send(p, STRING))

    def share_snapshot_list(self, name: str) -> list[dict[str, Any]]:
        p = self.api(
            "SYNO.Core.Share.Snapshot",
            "list",
            "2",
            name=go_quote(name),
            additional='["desc", "lock", "schedule_snapshot", "ruuid", "snap_size"]',
        )
        return list(self.send(p, SHARE_SNAPSHOT_INFOS)["snapshots"])

    def share_snapshot_delete(self, snap_time: str, share_name: str) -> None:
        p = self.api(
            "SYNO.Core.Share.Snapshot",
            "delete",
            name=go_quote(share_name),
            snapshots=f"[{go_quote(snap_time)}]",
        )
        failed = self.send(p, FAILED_SNAPSHOTS)
        assert not failed, f"Failed to delete snapshot, API common error. snapshot: {snap_time}"

    def share_permission_set(
        self, name: str, user_group_type: str, permissions: list[dict[str, Any]]
    ) -> None:
        p = self.api(
            "SYNO.Core.Share.Permission",
            "set",
            name=go_quote(name),
            user_group_type=go_quote(user_group_type),
            permissions=json.dumps(permissions),
        )
        self.send(p, EMPTY)

    def share_permission_list(self, name: str, user_group_type: str) -> list[dict[str, Any]]:
        p = self.api(
            "SYNO.Core.Share.Permission",
            "list",
            name=go_quote(name),
            user_group_type=go_quote(user_group_type),
        )
        return list(self.send(p, SHARE_PERMISSIONS)["items"])

    def share_nfs_privilege_save(self, share_name: str, rules: list[dict[str, Any]]) -> None:
        p = {
            "api": "SYNO.Core.FileServ.NFS.SharePrivilege",
            "method": "save",
            "share_name": go_quote(share_name),
            "version": "1",
            "rule": json.dumps(rules),
        }
        self.send(p, EMPTY)

    def share_nfs_privilege_load(self, share_name: str) -> dict[str, Any]:
        p = {
            "api": "SYNO.Core.FileServ.NFS.SharePrivilege",
            "method": "load",
            "share_name": go_quote(share_name),
            "version": "1",
        }
        return dict(self.send(p, SHARE_PRIVILEGE))

    def nfs_get(self) -> dict[str, Any]:
        return dict(self.send(self.api("SYNO.Core.FileServ.NFS", "get", "2"), NFS_INFO))

    def nfs_set(self, enable_v3: bool, enable_v4: bool, minor: int) -> None:
        p = self.api(
            "SYNO.Core.FileServ.NFS",
            "set",
            "2",
            enable_nfs=str(enable_v3).lower(),
            enable_nfs_v4=str(enable_v4).lower(),
            enabled_minor_ver=str(minor),
        )
        self.send(p, EMPTY)


def error_of(call: Any, *args: Any) -> int:
    with pytest.raises(DsmError) as exc:
        call(*args)
    return exc.value.code


# -- the driver's service: pkg/dsm/service -----------------------------------------------------

GB = 1 << 30
MB = 1 << 20
IQN_PREFIX = "iqn.2000-01.com.synology:"  # pkg/models/dsm.go IqnPrefix
SNAPSHOT_DESC_PREFIX = "(Do not change)"  # pkg/models/dsm.go ShareSnapshotDescPrefix


def first_available_volume(dsm: Driver, size: int, protocol: str) -> dict[str, Any]:
    """dsm.go getFirstAvailableVolume."""
    for vol in dsm.volume_list():
        free = int(vol["size_free_byte"])
        if free < GB or vol["status"] in ("crashed", "read_only", "deleting") or free <= size:
            continue
        if vol["container"] == "external" and vol["location"] == "sata":
            continue
        if vol["fs_type"] == "ext4" and protocol in ("smb", "nfs"):
            continue
        return vol
    raise AssertionError("Cannot find any available volume")


def create_mapping_target(
    dsm: Driver, target_name: str, k8s_name: str, lun_uuid: str, multi_session: bool
) -> dict[str, Any]:
    """dsm.go createMappingTarget: info, create (AlreadyExist is fine), get BY NAME, set, map."""
    hostname = dsm.dsm_info_get()["hostname"]
    iqn = (IQN_PREFIX + f"{hostname}.{k8s_name}").replace("_", "-").replace("+", "p")[:128]
    try:
        dsm.target_create(target_name, iqn)
    except DsmError as err:
        assert err.code == 18990744, err  # iscsi.go errCodeMapping: AlreadyExistError
    target = dsm.target_get(target_name)
    assert target["name"] == target_name and target["iqn"] == iqn
    target_id = str(target["target_id"])
    if multi_session:
        dsm.target_set(target_id, 0)
    dsm.lun_map_target([target_id], lun_uuid)
    return target


def wait_clone_finished(dsm: Driver, lun_name: str) -> None:
    """dsm.go waitCloneFinished (exponential backoff, 20 s at most)."""
    deadline = time.monotonic() + 20
    while dsm.lun_get(lun_name)["is_action_locked"]:
        assert time.monotonic() < deadline, "Could not finish clone"
        time.sleep(1)


def list_iscsi_volumes(dsm: Driver) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """dsm.go listISCSIVolumes: (lun, target) of every k8s-csi LUN mapped to a target."""
    out = []
    for target in dsm.target_list():
        for mapping in target["mapped_luns"]:
            lun = dsm.lun_get(mapping["lun_uuid"])
            if lun["name"].startswith("k8s-csi"):
                out.append((lun, target))
    return out


def list_share_volumes(dsm: Driver) -> list[tuple[dict[str, Any], str]]:
    """share_volume.go listSMBorNFSVolumes: (share, protocol) of every k8s-csi share."""
    assert "DSM UC" not in dsm.dsm_system_info_get()["firmware_ver"]  # webapi/utils.go IsUC
    out = []
    for share in dsm.share_list():
        if not share["name"].startswith("k8s-csi"):
            continue
        rules = dsm.share_nfs_privilege_load(share["name"])["rule"]
        out.append((share, "nfs" if rules else "smb"))
    return out


def gmt_to_unix(text: str) -> int:
    """share_volume.go GMTToUnixSecond: layout "GMT-07-2006.01.02-15.04.05"."""
    m = re.fullmatch(r"GMT([+-])(\d\d)-(\d{4})\.(\d\d)\.(\d\d)-(\d\d)\.(\d\d)\.(\d\d)", text)
    assert m, f"{text!r} does not parse as the driver's snapshot time"
    sign, hours = (1 if m[1] == "+" else -1), int(m[2])
    t = time.struct_time(
        (int(m[3]), int(m[4]), int(m[5]), int(m[6]), int(m[7]), int(m[8]), 0, 0, 0)
    )
    return calendar.timegm(t) - sign * hours * 3600


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dsm(guest_launcher: Any) -> Iterator[Driver]:
    """A fresh simulated DSM, set up by its wizard, and the driver logged in (service/dsm.go
    AddDsm)."""
    with guest_launcher({"SIM_SCREENS": ""}) as guest:
        assert create_admin(guest.url).json()["ok"] is True
        driver = Driver(guest.url)
        driver.login()
        yield driver


# -- iSCSI --------------------------------------------------------------------------------------


def test_iscsi_volume_replay(dsm: Driver) -> None:
    size = 2 * GB
    lun_name, target_name, k8s = "k8s-csi-pvc-a1", "k8s-csi-pvc-a1", "pvc-a1"
    # CreateVolume -> createVolumeByDsm (dsm.go): location, type, create, get BY NAME, target.
    location = first_available_volume(dsm, size, "iscsi")["volume_path"]
    vol = dsm.volume_get(location)
    lun_type = "BLUN" if vol["fs_type"] == "btrfs" else "ADV"  # getLunTypeByInputParams, thin
    assert lun_type == "BLUN"
    attribs = [
        {"dev_attrib": "emulate_tpws", "enable": 1},
        {"dev_attrib": "emulate_caw", "enable": 1},
    ]
    created = dsm.lun_create(lun_name, size, lun_type, location, "", attribs)
    # A second create is 18990538, which the driver takes as AlreadyExist and goes on.
    assert error_of(dsm.lun_create, lun_name, size, lun_type, location, "", attribs) == 18990538
    lun = dsm.lun_get(lun_name)
    assert lun["uuid"] == created and lun["size"] == size and lun["location"] == location
    assert lun["type"] == 263  # BLUN (pkg/models/dsm.go: "thin provision, mapped to type 263")
    assert lun["dev_attribs"] == attribs and lun["is_action_locked"] is False
    target = create_mapping_target(dsm, target_name, k8s, lun["uuid"], multi_session=True)
    assert target["iqn"] == f"{IQN_PREFIX}{SERVER_NAME}.{k8s}"
    # TargetCreate again: 18990744 (AlreadyExist), the driver goes on with TargetGet by name.
    assert error_of(dsm.target_create, target_name, target["iqn"]) == 18990744
    # iscsi.go LunList with every type the driver knows; a type filter that excludes BLUN.
    assert [x["uuid"] for x in dsm.lun_list()] == [lun["uuid"]]
    p = dsm.api("SYNO.Core.ISCSI.LUN", "list", types='["FILE"]', additional=Driver.ADDITIONAL_LUN)
    assert dsm.send(p, LUN_INFOS)["luns"] == []

    # Look up: GetVolume -> ListVolumes (dsm.go listISCSIVolumes, share_volume.go ...).
    volumes = list_iscsi_volumes(dsm)
    assert [(v[0]["uuid"], v[1]["name"]) for v in volumes] == [(lun["uuid"], target_name)]
    got_target = volumes[0][1]
    assert got_target["max_sessions"] == 0  # TargetSet(targetId, 0): multiple sessions
    # nodeserver.go loginTarget: the device is ...-lun-<MappedLuns[0].MappingIndex>, 1 on DSM.
    assert got_target["mapped_luns"] == [{"lun_uuid": lun["uuid"], "mapping_index": 1}]
    assert got_target["network_portals"] and got_target["status"] == "online"
    assert list_share_volumes(dsm) == []
    # nodeserver.go getPortals -> IsUC is false on a Virtual DSM; GetAnotherController's
    # NetworkInterfaceList is what a UC would list.
    assert dsm.network_interface_list("node0")[0]["status"] == "connected"

    # ExpandVolume (dsm.go): LunUpdate with the new size.
    dsm.lun_update(lun["uuid"], 3 * GB)
    assert dsm.lun_get(lun["uuid"])["size"] == 3 * GB

    # CreateSnapshot (dsm.go): SnapshotCreate, then getISCSISnapshot lists them.
    snap_uuid = dsm.snapshot_create(lun["uuid"], "snapshot-s1", "", "Kubernetes CSI", False)
    # listISCSISnapshotsByDsm: SnapshotList of every volume's LUN.
    snaps = [s for v, _ in list_iscsi_volumes(dsm) for s in dsm.snapshot_list(v["uuid"])]
    assert [s["uuid"] for s in snaps] == [snap_uuid]
    assert snaps[0]["parent_uuid"] == lun["uuid"] and snaps[0]["total_size"] == 3 * GB
    assert snaps[0]["root_path"] == location and snaps[0]["name"] == "snapshot-s1"
    assert dsm.snapshot_get(snap_uuid)["uuid"] == snap_uuid

    # CreateVolume from the snapshot -> createVolumeBySnapshot (dsm.go).
    from_snap = "k8s-csi-pvc-b2"
    dsm.snapshot_clone(from_snap, snaps[0]["parent_uuid"], snap_uuid)
    wait_clone_finished(dsm, from_snap)
    snap_lun = dsm.lun_get(from_snap)
    assert snap_lun["size"] == 3 * GB and snap_lun["type"] == 263
    create_mapping_target(dsm, from_snap, "pvc-b2", snap_lun["uuid"], multi_session=False)
    # CreateVolume from the volume -> createVolumeByVolume (dsm.go).
    from_vol = "k8s-csi-pvc-c3"
    dsm.lun_clone(from_vol, lun["uuid"], lun["location"])
    assert error_of(dsm.lun_clone, from_vol, lun["uuid"], lun["location"]) == 18990538
    wait_clone_finished(dsm, from_vol)
    vol_lun = dsm.lun_get(from_vol)
    assert vol_lun["size"] == 3 * GB
    create_mapping_target(dsm, from_vol, "pvc-c3", vol_lun["uuid"], multi_session=False)
    assert len(list_iscsi_volumes(dsm)) == 3

    # DeleteSnapshot (dsm.go): delete, then get answers "no such snapshot".
    dsm.snapshot_delete(snap_uuid)
    assert error_of(dsm.snapshot_get, snap_uuid) == 18990532
    assert error_of(dsm.snapshot_delete, snap_uuid) == 18990532
    # DeleteVolume (dsm.go): LUN, then its target when it mapped only that LUN.
    for lun_uuid, tgt in [(v["uuid"], t) for v, t in list_iscsi_volumes(dsm)]:
        dsm.lun_delete(lun_uuid)
        assert len(tgt["mapped_luns"]) == 1
        dsm.target_delete(str(tgt["target_id"]))
        assert error_of(dsm.lun_get, lun_uuid) == 18990531
        assert error_of(dsm.target_get, str(tgt["target_id"])) > 18990000
    assert dsm.lun_list() == [] and dsm.target_list() == []


# -- SMB and NFS shares -------------------------------------------------------------------------


def create_share_volume(dsm: Driver, name: str, size: int, protocol: str) -> dict[str, Any]:
    """share_volume.go createSMBorNFSVolumeByDsm."""
    location = first_available_volume(dsm, size, protocol)["volume_path"]
    assert dsm.volume_get(location)["fs_type"] != "ext4"
    size_mb = -(-size // MB)
    info = {
        "name": name,
        "vol_path": location,
        "desc": "Created by Synology K8s CSI",
        "enable_share_cow": False,
        "enable_recycle_bin": True,
        "recycle_bin_admin_only": True,
        "encryption": 0,
        "share_quota": size_mb,
        "quota_value": 0,
        "support_snapshot": False,
        "uuid": "",
        "name_org": "",
    }
    dsm.share_create(name, info)
    assert error_of(dsm.share_create, name, info) == 3301  # AlreadyExist: the driver goes on
    share = dsm.share_get(name)
    assert share["quota_value"] == size_mb and share["vol_path"] == location and share["uuid"]
    return share


def share_replay(dsm: Driver, protocol: str, suffix: str) -> None:
    name = f"k8s-csi-pvc-{suffix}"
    size = 1 * GB
    if protocol == "nfs":
        # CreateVolume -> isNfsVersionSupport (dsm.go): NfsGet, NfsSet with the highest version.
        info = dsm.nfs_get()
        dsm.nfs_set(True, info["support_major_ver"] == 4, info["support_minor_ver"])
        after = dsm.nfs_get()
        assert after["enable_nfs"] is True and after["enable_nfs_v4"] is True
    share = create_share_volume(dsm, name, size, protocol)
    # The node's rules (nodeserver.go setNFSVolumePrivilege / setSMBVolumePermission).
    if protocol == "nfs":
        rule = {
            "async": True,
            "client": "10.0.0.7",
            "crossmnt": True,
            "insecure": True,
            "privilege": "rw",
            "root_squash": "root",
            "security_flavor": {
                "kerberos": False,
                "kerberos_integrity": False,
                "kerberos_privacy": False,
                "sys": True,
            },
        }
        dsm.share_nfs_privilege_save(name, [rule])
        assert dsm.share_nfs_privilege_load(name) == {"share_name": name, "rule": [rule]}
    else:
        dsm.share_permission_set(
            name,
            "local_user",
            [{"name": ADMIN, "is_readonly": False, "is_writable": True, "is_deny": False}],
        )
        mine = [p for p in dsm.share_permission_list(name, "local_user") if p["name"] == ADMIN]
        assert mine and mine[0]["is_writable"] is True and mine[0]["is_deny"] is False
        assert dsm.share_nfs_privilege_load(name)["rule"] == []
    # Look up: listSMBorNFSVolumes tells NFS from SMB by the NFS rules.
    found = [(s["uuid"], p) for s, p in list_share_volumes(dsm) if s["name"] == name]
    assert found == [(share["uuid"], protocol)]

    # ExpandVolume (dsm.go): SetShareQuota in MB, rounded up.
    dsm.set_share_quota(share, -(-2 * GB // MB))
    share = dsm.share_get(name)
    assert share["quota_value"] == 2048

    # CreateSnapshot (dsm.go): ShareSnapshotCreate answers the time; listSMBorNFSSnapshotsByDsm.
    snap_time = dsm.share_snapshot_create(name, SNAPSHOT_DESC_PREFIX + "snapshot-x", False)
    assert abs(gmt_to_unix(snap_time) - time.time()) < 120
    snaps = dsm.share_snapshot_list(name)
    assert [s["time"] for s in snaps] == [snap_time]
    assert snaps[0]["desc"].replace(SNAPSHOT_DESC_PREFIX, "") == "snapshot-x" and snaps[0]["ruuid"]

    # CreateVolume from the snapshot -> createSMBorNFSVolumeBySnapshot (share_volume.go).
    src = dsm.share_get(name)
    from_snap = f"k8s-csi-pvc-{suffix}-s"
    clone_info = {
        "name": from_snap,
        "vol_path": src["vol_path"],
        "desc": f"Cloned from [{snap_time}] by csi driver",
        "enable_share_cow": False,
        "enable_recycle_bin": src["enable_recycle_bin"],
        "recycle_bin_admin_only": src["recycle_bin_admin_only"],
        "encryption": 0,
        "quota_value": 0,
        "support_snapshot": False,
        "uuid": "",
        "name_org": name,
    }
    assert dsm.share_clone(from_snap, snap_time, clone_info) == from_snap
    cloned = dsm.share_get(from_snap)
    if cloned["quota_value"] == 0:
        dsm.set_share_quota(cloned, 2048)
    assert dsm.share_get(from_snap)["quota_value"] == 2048
    # A snapshot the source does not have: 3300 (share.go ShareClone's comment).
    bad = dict(clone_info, name=f"k8s-csi-pvc-{suffix}-x")
    assert error_of(dsm.share_clone, bad["name"], "GMT+00-2000.01.01-00.00.00", bad) == 3300
    # CreateVolume from the volume -> createSMBorNFSVolumeByVolume (share_volume.go).
    from_vol = f"k8s-csi-pvc-{suffix}-v"
    vol_info = dict(clone_info, name=from_vol, desc=f"Cloned from [{name}] by csi driver")
    assert dsm.share_clone(from_vol, "", vol_info) == from_vol
    assert dsm.share_get(from_vol)["quota_value"] == src["quota_value"]

    # DeleteSnapshot (dsm.go): ShareSnapshotDelete answers the failed ones: none.
    dsm.share_snapshot_delete(snap_time, name)
    assert dsm.share_snapshot_list(name) == []
    # DeleteVolume (dsm.go): ShareDelete; a later get is 402 (NoSuchShare).
    for share_name in (from_snap, from_vol, name):
        dsm.share_delete(share_name)
        assert error_of(dsm.share_get, share_name) == 402
    assert [s for s, _ in list_share_volumes(dsm) if s["name"].startswith(name)] == []


def test_smb_share_volume_replay(dsm: Driver) -> None:
    share_replay(dsm, "smb", "smb1")


def test_nfs_share_volume_replay(dsm: Driver) -> None:
    share_replay(dsm, "nfs", "nfs1")


def test_driver_logs_in_again_after_its_session_ends(dsm: Driver) -> None:
    """dsmwebapi.go sendRequest: 119 without a valid session, then Login and the same call."""
    dsm.sid = "expired"
    assert dsm.volume_list()[0]["volume_path"] == "/volume1"
    assert dsm.calls[-3:] == [
        "SYNO.Core.Storage.Volume.list",
        "SYNO.API.Auth.login",
        "SYNO.Core.Storage.Volume.list",
    ]
    dsm.sid = ""
    assert dsm.dsm_system_info_get()["model"]
    assert dsm.calls[-2] == "SYNO.API.Auth.login"
