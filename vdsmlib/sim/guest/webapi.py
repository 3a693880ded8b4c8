"""The DSM Web API subset of the simulator: ``/webapi/{query,auth,entry}.cgi``.

Pure request -> response logic (no sockets): :func:`handle` takes the CGI name, the merged
GET/POST parameters, the ``id`` cookie and the ``X-SYNO-TOKEN`` header, and returns an
:class:`ApiResult` with the JSON envelope and, for ``format=cookie`` logins, the cookie to set.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import dataplane
from .facts import errors as codes
from .facts import webapi as catalogue
from .state import (
    MAX_LUNS,
    MAX_SHARES,
    MAX_TARGETS,
    VOLUME_PATH,
    VOLUME_TOTAL_BYTES,
    Lun,
    Session,
    Share,
    SimState,
    Target,
)

__all__ = ["ApiError", "ApiResult", "api_catalog", "handle"]

# DSM's error codes (vdsmlib.dsm.errors); the three without a public source are the
# simulator's choice.
E_UNKNOWN = codes.UNKNOWN
E_BAD_REQUEST = codes.BAD_REQUEST
E_NO_API = codes.NO_SUCH_API
E_NO_METHOD = codes.NO_SUCH_METHOD
E_BAD_VERSION = codes.VERSION_NOT_SUPPORTED
E_NO_PERMISSION = codes.NO_PERMISSION
E_LOST_PARAM = codes.LOST_PARAMETERS
E_INVALID_SESSION = codes.INVALID_SESSION
E_INVALID_PARAM = codes.INVALID_PARAMETER
E_AUTH_FAILED = codes.AUTH_FAILED
E_SMB_PARTIAL = codes.SMB_PARTIAL_SETTINGS
E_SHARE_NONE = codes.SHARE_NOT_FOUND
E_SHARE_INVALID = codes.SHARE_INVALID_INPUT
E_SHARE_EXISTS = codes.SHARE_EXISTS
E_SHARE_MAX = codes.SHARE_MAX_COUNT
E_ISCSI_NO_SPACE = codes.ISCSI_NO_SPACE
E_ISCSI_BAD_TYPE = 18990500
E_ISCSI_NO_LUN = codes.ISCSI_NO_SUCH_LUN
E_ISCSI_DUP_LUN = codes.ISCSI_DUPLICATE_LUN
E_ISCSI_LUN_MAX = 18990541
E_ISCSI_TARGET_MAX = 18990542
E_ISCSI_BAD_TARGET = codes.ISCSI_BAD_TARGET
E_ISCSI_DUP_TARGET = codes.ISCSI_DUPLICATE_TARGET

LUN_TYPES = frozenset(
    {"BLOCK", "FILE", "THIN", "ADV", "BLUN", "BLUN_THICK", "BLUN_SINK", "BLUN_THICK_SINK"}
)


class ApiError(Exception):
    """A Web API failure with DSM's error code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class ApiResult:
    """The envelope to send and side effects for the HTTP layer."""

    payload: dict[str, Any]
    set_cookie_sid: str | None = None
    api: str = ""
    method: str = ""
    version: str = ""

    @property
    def code(self) -> int:
        """0 on success, else DSM's error code."""
        if self.payload.get("success"):
            return 0
        return int(self.payload.get("error", {}).get("code", E_UNKNOWN))


@dataclass
class Ctx:
    """One call: its parameters, its session and the shared state."""

    state: SimState
    cgi: str
    params: dict[str, str]
    version: int
    session: Session | None
    set_cookie_sid: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # -- parameter helpers (DSM sends JSON-encoded values, or sometimes plain strings) --------

    def has(self, name: str) -> bool:
        return name in self.params

    def value(self, name: str, *, required: bool = True, default: Any = None) -> Any:
        if name not in self.params:
            if required:
                raise ApiError(E_LOST_PARAM)
            return default
        raw = self.params[name]
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def text(self, name: str, *, required: bool = True, default: str = "") -> str:
        value = self.value(name, required=required, default=default)
        if isinstance(value, (dict, list)) or value is None:
            raise ApiError(E_INVALID_PARAM)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def boolean(self, name: str, *, required: bool = True, default: bool = False) -> bool:
        value = self.value(name, required=required, default=default)
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "false", "no", "off"):
            return value.lower() in ("true", "yes", "on")
        raise ApiError(E_INVALID_PARAM)

    def integer(self, name: str, *, required: bool = True, default: int = 0) -> int:
        value = self.value(name, required=required, default=default)
        if isinstance(value, bool):
            raise ApiError(E_INVALID_PARAM)
        try:
            return int(value)
        except (TypeError, ValueError) as err:
            raise ApiError(E_INVALID_PARAM) from err

    def string_list(self, name: str, *, required: bool = False) -> list[str]:
        value = self.value(name, required=required, default=[])
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [str(v) for v in value]
        raise ApiError(E_INVALID_PARAM)


Handler = Callable[[Ctx], Any]


@dataclass(frozen=True)
class Method:
    """One method of an API: handler, minimum version, whether it needs the admin's session,
    whether it writes (for 7.3.2's SynoToken enforcement)."""

    handler: Handler
    min_version: int = 1
    auth: bool = True
    write: bool = False


@dataclass(frozen=True)
class Api:
    """One API: DSM's catalogue entry (path, versions) and the simulator's methods of it."""

    name: str
    methods: dict[str, Method]
    cgis: tuple[str, ...] = ("entry.cgi",)

    @property
    def facts(self) -> catalogue.ApiEntry:
        return catalogue.CATALOGUE[self.name]

    @property
    def path(self) -> str:
        return self.facts.path

    @property
    def min_version(self) -> int:
        return self.facts.min_version

    @property
    def max_version(self) -> int:
        return self.facts.max_version

    @property
    def request_format(self) -> str | None:
        return self.facts.request_format


# -- SYNO.API.Info ----------------------------------------------------------------------------


def _info_query(ctx: Ctx) -> dict[str, Any]:
    wanted = ctx.text("query", required=False, default="ALL")
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    out: dict[str, Any] = {}
    for name, api in CATALOG.items():
        if "ALL" in names or name in names:
            out[name] = api.facts.info()
    return out


# -- SYNO.API.Auth ----------------------------------------------------------------------------


def _auth_login(ctx: Ctx) -> dict[str, Any]:
    account = ctx.text("account", required=False)
    passwd = ctx.text("passwd", required=False)
    state = ctx.state
    with state.lock:
        admin = state.account
        if admin is None or not account or account != admin.name or passwd != admin.password:
            raise ApiError(E_AUTH_FAILED)
        session = state.new_session(admin.name)
    data: dict[str, Any] = {
        "sid": session.sid,
        "did": secrets.token_urlsafe(24),
        "is_portal_port": False,
    }
    wants_token = ctx.text("enable_syno_token", required=False).lower() == "yes"
    if wants_token and ctx.version >= 6:
        data["synotoken"] = session.synotoken
    if ctx.text("format", required=False, default="cookie").lower() == "cookie":
        ctx.set_cookie_sid = session.sid
    return data


def _auth_logout(ctx: Ctx) -> None:
    if ctx.session is not None:
        ctx.state.end_session(ctx.session.sid)


# -- File services ----------------------------------------------------------------------------

_NFS_SETTABLE: dict[str, type] = {
    "enable_nfs": bool,
    "enable_nfs_v4": bool,
    "enabled_minor_ver": int,
    "nfs_v4_domain": str,
    "read_size": int,
    "write_size": int,
    "unix_pri_enable": bool,
}


def _read_typed(ctx: Ctx, name: str, kind: type) -> Any:
    if kind is bool:
        return ctx.boolean(name)
    if kind is int:
        return ctx.integer(name)
    return ctx.text(name)


def _nfs_get(ctx: Ctx) -> dict[str, Any]:
    with ctx.state.lock:
        return dict(ctx.state.nfs)


def _nfs_set(ctx: Ctx) -> None:
    changes = {
        name: _read_typed(ctx, name, kind) for name, kind in _NFS_SETTABLE.items() if ctx.has(name)
    }
    if not changes:
        raise ApiError(E_LOST_PARAM)
    if "enabled_minor_ver" in changes and changes["enabled_minor_ver"] not in (0, 1):
        raise ApiError(E_INVALID_PARAM)
    with ctx.state.lock:
        ctx.state.nfs.update(changes)


def _smb_get(ctx: Ctx) -> dict[str, Any]:
    with ctx.state.lock:
        return dict(ctx.state.smb)


def _smb_set(ctx: Ctx) -> None:
    with ctx.state.lock:
        fields = {name: type(value) for name, value in ctx.state.smb.items()}
    given = [name for name in fields if ctx.has(name)]
    if not given:
        raise ApiError(E_LOST_PARAM)
    if ctx.state.scenario.require_synotoken and len(given) != len(fields):
        # DSM 7.3.2 wants the whole object back.
        raise ApiError(E_SMB_PARTIAL)
    changes = {name: _read_typed(ctx, name, fields[name]) for name in given}
    with ctx.state.lock:
        ctx.state.smb.update(changes)


# -- Services ---------------------------------------------------------------------------------


def _service_get(ctx: Ctx) -> dict[str, Any]:
    additional = ctx.string_list("additional")
    wanted = ctx.string_list("service_id") if ctx.has("service_id") else []
    with ctx.state.lock:
        nfs_on = bool(ctx.state.nfs["enable_nfs"])
        smb_on = bool(ctx.state.smb["enable_samba"])
    rows = [
        ("nfs-server", "NFS", nfs_on),
        ("pkg-iscsi", "iSCSI", True),
        ("pkg-synosamba-smbd", "SMB", smb_on),
        ("ftpd", "FTP", False),
        ("ssh-shell", "SSH", False),
    ]
    services = []
    for service_id, display, enabled in rows:
        if wanted and service_id not in wanted:
            continue
        entry: dict[str, Any] = {
            "service_id": service_id,
            "display_name": display,
            "enable_status": "enabled" if enabled else "disabled",
        }
        if "active_status" in additional:
            entry["additional"] = {"active_status": "active" if enabled else "inactive"}
        services.append(entry)
    return {"service": services}


# -- Storage and system -----------------------------------------------------------------------


def _volume(state: SimState) -> dict[str, Any]:
    free = state.volume_free_bytes()
    return {
        "volume_id": 1,
        "id": "volume_1",
        "display_name": "Volume 1",
        "description": "",
        "volume_path": VOLUME_PATH,
        "status": "normal",
        "fs_type": "btrfs",
        "size_total_byte": str(VOLUME_TOTAL_BYTES),
        "size_free_byte": str(free),
        "size_used_byte": str(VOLUME_TOTAL_BYTES - free),
        "container": "internal",
        "location": "internal",
        "pool_path": "reuse_1",
        "raid_type": "basic",
        "readonly": False,
        "is_encrypted": False,
        "single_volume": True,
    }


def _volume_list(ctx: Ctx) -> dict[str, Any]:
    if not all(ctx.has(p) for p in ("offset", "limit", "location")):
        raise ApiError(E_BAD_REQUEST)
    offset = ctx.integer("offset")
    limit = ctx.integer("limit")
    volumes = [_volume(ctx.state)][max(offset, 0) :]
    if limit >= 0:
        volumes = volumes[:limit]
    return {"volumes": volumes, "total": 1, "offset": offset}


def _volume_get(ctx: Ctx) -> dict[str, Any]:
    path = ctx.text("volume_path")
    if path != VOLUME_PATH:
        raise ApiError(E_INVALID_PARAM)
    return {"volume": _volume(ctx.state)}


def _uptime_seconds(state: SimState) -> int:
    return int(time.monotonic() - state.started)


def _serial(state: SimState) -> str:
    return "SIMV" + state.scenario.build_number.zfill(8)


def _system_info(ctx: Ctx) -> dict[str, Any]:
    state = ctx.state
    kind = ctx.text("type", required=False, default="")
    with state.lock:
        hostname = state.hostname
        workgroup = state.smb["workgroup"]
    if kind == "network":
        return {
            "hostname": hostname,
            "workgroup": workgroup,
            "enabled_domain": False,
            "enabled_samba": True,
            "dns_primary": "10.0.2.3",
            "dns_secondary": "",
            "gateway": "10.0.2.2",
            "v6gateway": "",
            "dns_manual": False,
        }
    if kind not in ("", "general", "system"):
        raise ApiError(E_INVALID_PARAM)
    up = _uptime_seconds(state)
    return {
        "model": "VirtualDSM",
        "firmware_ver": state.scenario.dsm_version,
        "firmware_date": "2024/11/05",
        "serial": _serial(state),
        "ram_size": 1024,
        "cpu_cores": "2",
        "cpu_vendor": "QEMU",
        "cpu_family": "Virtual CPU",
        "up_time": f"{up // 3600}:{up % 3600 // 60:02d}:{up % 60:02d}",
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "time_zone": "UTC",
        "sys_temp": 0,
        "temperature_warning": False,
        "enabled_ntp": False,
    }


def _dsm_getinfo(ctx: Ctx) -> dict[str, Any]:
    state = ctx.state
    return {
        "model": "VirtualDSM",
        "ram": 1024,
        "serial": _serial(state),
        "temperature": 0,
        "temperature_warn": False,
        "time": time.strftime("%a %b %d %H:%M:%S %Y"),
        "uptime": _uptime_seconds(state),
        "version": state.scenario.build_number,
        "version_string": state.scenario.dsm_version,
        "codepage": "enu",
    }


# -- Shares -----------------------------------------------------------------------------------

_SHARE_FORBIDDEN = set("!\"#$%&'()*+,/:;<=>?@[]\\^`{|}~")


def _share_name_ok(name: str) -> bool:
    return (
        0 < len(name) <= 32
        and not (set(name) & _SHARE_FORBIDDEN)
        and not name.startswith((".", " "))
        and name == name.strip()
    )


def _find_share(state: SimState, name: str) -> Share | None:
    for share in state.shares.values():
        if share.name.lower() == name.lower():
            return share
    return None


def _share_list(ctx: Ctx) -> dict[str, Any]:
    offset = ctx.integer("offset", required=False, default=0)
    limit = ctx.integer("limit", required=False, default=-1)
    with ctx.state.lock:
        shares = [s.to_json() for s in sorted(ctx.state.shares.values(), key=lambda s: s.name)]
    total = len(shares)
    shares = shares[max(offset, 0) :]
    if limit >= 0:
        shares = shares[:limit]
    return {"shares": shares, "total": total, "offset": offset}


def _share_get(ctx: Ctx) -> dict[str, Any]:
    name = ctx.text("name")
    with ctx.state.lock:
        share = _find_share(ctx.state, name)
        if share is None:
            raise ApiError(E_SHARE_NONE)
        return share.to_json()


def _share_create(ctx: Ctx) -> dict[str, Any]:
    name = ctx.text("name")
    info = ctx.value("shareinfo")
    if not isinstance(info, dict):
        raise ApiError(E_SHARE_INVALID)
    name = str(info.get("name") or name)
    vol_path = str(info.get("vol_path", ""))
    if not _share_name_ok(name) or vol_path != VOLUME_PATH:
        raise ApiError(E_SHARE_INVALID)
    with ctx.state.lock:
        if _find_share(ctx.state, name) is not None:
            raise ApiError(E_SHARE_EXISTS)
        if len(ctx.state.shares) >= MAX_SHARES:
            raise ApiError(E_SHARE_MAX)
        share = Share(
            name=name,
            vol_path=vol_path,
            desc=str(info.get("desc", "")),
            enable_recycle_bin=bool(info.get("enable_recycle_bin", False)),
            recycle_bin_admin_only=bool(info.get("recycle_bin_admin_only", False)),
            enable_share_cow=bool(info.get("enable_share_cow", True)),
            encryption=int(info.get("encryption", 0) or 0),
            quota_value=int(info.get("share_quota", 0) or 0),
        )
        ctx.state.shares[name] = share
    return {"name": name}


def _share_delete(ctx: Ctx) -> None:
    value = ctx.value("name")
    names = value if isinstance(value, list) else [value]
    names = [str(n) for n in names]
    with ctx.state.lock:
        found = [_find_share(ctx.state, n) for n in names]
        if not names or any(s is None for s in found):
            raise ApiError(E_SHARE_NONE)
        for share in found:
            if share is not None:
                ctx.state.shares.pop(share.name, None)


# -- iSCSI ------------------------------------------------------------------------------------


def _get_lun(state: SimState, uuid: str) -> Lun:
    lun = state.luns.get(uuid)
    if lun is None:
        raise ApiError(E_ISCSI_NO_LUN)
    return lun


def _get_target(state: SimState, raw: str) -> Target:
    try:
        target = state.targets.get(int(raw))
    except ValueError:
        target = None
    if target is None:
        raise ApiError(E_ISCSI_BAD_TARGET)
    return target


def _lun_list(ctx: Ctx) -> dict[str, Any]:
    with ctx.state.lock:
        return {"luns": [lun.to_json() for lun in ctx.state.luns.values()]}


def _lun_get(ctx: Ctx) -> dict[str, Any]:
    uuid = ctx.text("uuid")
    with ctx.state.lock:
        return {"lun": _get_lun(ctx.state, uuid).to_json()}


def _lun_create(ctx: Ctx) -> dict[str, Any]:
    name = ctx.text("name")
    size = ctx.integer("size")
    lun_type = ctx.text("type", required=False, default="BLUN")
    location = ctx.text("location")
    description = ctx.text("description", required=False)
    if not name or len(name) > 128 or size <= 0:
        raise ApiError(E_INVALID_PARAM)
    if lun_type not in LUN_TYPES:
        raise ApiError(E_ISCSI_BAD_TYPE)
    if location != VOLUME_PATH:
        raise ApiError(E_INVALID_PARAM)
    state = ctx.state
    with state.lock:
        if any(lun.name == name for lun in state.luns.values()):
            raise ApiError(E_ISCSI_DUP_LUN)
        if len(state.luns) >= MAX_LUNS:
            raise ApiError(E_ISCSI_LUN_MAX)
        lun = Lun(name=name, size=size, lun_type=lun_type, location=location)
        limit = state.volume_free_bytes() if lun.thick else 1 << 50
        if size > limit:
            raise ApiError(E_ISCSI_NO_SPACE)
        lun.lun_id = state.next_lun_id
        lun.description = description
        state.next_lun_id += 1
        state.luns[lun.uuid] = lun
    return {"uuid": lun.uuid}


def _lun_delete(ctx: Ctx) -> None:
    uuid = ctx.text("uuid")
    with ctx.state.lock:
        _get_lun(ctx.state, uuid)
        del ctx.state.luns[uuid]
        for target in ctx.state.targets.values():
            if uuid in target.mapped:
                target.mapped.remove(uuid)


def _target_ids(ctx: Ctx) -> list[str]:
    value = ctx.value("target_ids")
    ids = value if isinstance(value, list) else [value]
    if not ids:
        raise ApiError(E_INVALID_PARAM)
    return [str(i) for i in ids]


def _lun_map_target(ctx: Ctx) -> None:
    uuid = ctx.text("uuid")
    ids = _target_ids(ctx)
    with ctx.state.lock:
        _get_lun(ctx.state, uuid)
        targets = [_get_target(ctx.state, i) for i in ids]
        for target in targets:
            if uuid not in target.mapped:
                target.mapped.append(uuid)


def _lun_unmap_target(ctx: Ctx) -> None:
    uuid = ctx.text("uuid")
    ids = _target_ids(ctx)
    with ctx.state.lock:
        _get_lun(ctx.state, uuid)
        for target in [_get_target(ctx.state, i) for i in ids]:
            if uuid in target.mapped:
                target.mapped.remove(uuid)


def _target_list(ctx: Ctx) -> dict[str, Any]:
    with ctx.state.lock:
        return {"targets": [t.to_json() for t in ctx.state.targets.values()]}


def _target_get(ctx: Ctx) -> dict[str, Any]:
    raw = ctx.text("target_id")
    with ctx.state.lock:
        return {"target": _get_target(ctx.state, raw).to_json()}


def _target_create(ctx: Ctx) -> dict[str, Any]:
    name = ctx.text("name")
    iqn = ctx.text("iqn", required=False)
    max_sessions = ctx.integer("max_sessions", required=False, default=1)
    auth_type = ctx.integer("auth_type", required=False, default=0)
    if not name or len(name) > 128:
        raise ApiError(E_INVALID_PARAM)
    state = ctx.state
    with state.lock:
        if not iqn:
            host = state.hostname.lower()
            iqn = f"iqn.2000-01.com.synology:{host}.{name.lower()}"
        if not iqn.startswith(("iqn.", "eui.", "naa.")) or len(iqn) > 223:
            raise ApiError(E_INVALID_PARAM)
        for target in state.targets.values():
            # DSM refuses a second target with the same name or the same IQN.
            if target.name == name or target.iqn == iqn:
                raise ApiError(E_ISCSI_DUP_TARGET)
        if len(state.targets) >= MAX_TARGETS:
            raise ApiError(E_ISCSI_TARGET_MAX)
        target = Target(
            target_id=state.next_target_id,
            name=name,
            iqn=iqn,
            max_sessions=max_sessions,
            auth_type=auth_type,
        )
        state.next_target_id += 1
        state.targets[target.target_id] = target
    return {"target_id": target.target_id}


def _target_delete(ctx: Ctx) -> None:
    raw = ctx.text("target_id")
    with ctx.state.lock:
        target = _get_target(ctx.state, raw)
        del ctx.state.targets[target.target_id]


# -- the catalog ------------------------------------------------------------------------------

_APIS = (
    Api(
        "SYNO.API.Info",
        {"query": Method(_info_query, auth=False)},
        cgis=("query.cgi", "entry.cgi"),
    ),
    Api(
        "SYNO.API.Auth",
        {
            # DSM answers login below version 3 with 103 (no such method).
            "login": Method(_auth_login, min_version=catalogue.LOGIN_MIN_VERSION, auth=False),
            "logout": Method(_auth_logout, auth=False),
        },
        cgis=("auth.cgi", "entry.cgi"),
    ),
    Api("SYNO.Core.FileServ.NFS", {"get": Method(_nfs_get), "set": Method(_nfs_set, write=True)}),
    Api("SYNO.Core.FileServ.SMB", {"get": Method(_smb_get), "set": Method(_smb_set, write=True)}),
    Api("SYNO.Core.Service", {"get": Method(_service_get)}),
    Api("SYNO.Core.Storage.Volume", {"list": Method(_volume_list), "get": Method(_volume_get)}),
    Api("SYNO.Core.System", {"info": Method(_system_info)}),
    Api("SYNO.DSM.Info", {"getinfo": Method(_dsm_getinfo)}),
    Api(
        "SYNO.Core.Share",
        {
            "list": Method(_share_list),
            "get": Method(_share_get),
            "create": Method(_share_create, write=True),
            "delete": Method(_share_delete, write=True),
        },
    ),
    Api(
        "SYNO.Core.ISCSI.LUN",
        {
            "list": Method(_lun_list),
            "get": Method(_lun_get),
            "create": Method(_lun_create, write=True),
            "delete": Method(_lun_delete, write=True),
            "map_target": Method(_lun_map_target, write=True),
            "unmap_target": Method(_lun_unmap_target, write=True),
        },
    ),
    Api(
        "SYNO.Core.ISCSI.Target",
        {
            "list": Method(_target_list),
            "get": Method(_target_get),
            "create": Method(_target_create, write=True),
            "delete": Method(_target_delete, write=True),
        },
    ),
)
#: Every API the simulator serves; each is in DSM's catalogue (vdsmlib.dsm.webapi).
CATALOG: dict[str, Api] = {api.name: api for api in _APIS}


def api_catalog() -> dict[str, tuple[int, int]]:
    """API name -> (minVersion, maxVersion), as SYNO.API.Info reports them."""
    return {name: (api.min_version, api.max_version) for name, api in CATALOG.items()}


def _dispatch(
    state: SimState,
    cgi: str,
    params: dict[str, str],
    cookie_sid: str | None,
    header_token: str | None,
    result: ApiResult,
) -> Any:
    api_name = params.get("api", "")
    method_name = params.get("method", "")
    version_raw = params.get("version", "")
    if not api_name:
        raise ApiError(E_BAD_REQUEST)
    api = CATALOG.get(api_name)
    if api is None or cgi not in api.cgis:
        raise ApiError(E_NO_API)
    if not method_name or not version_raw:
        raise ApiError(E_BAD_REQUEST)
    try:
        version = int(version_raw)
    except ValueError as err:
        raise ApiError(E_BAD_REQUEST) from err
    if not api.min_version <= version <= api.max_version:
        raise ApiError(E_BAD_VERSION)
    method = api.methods.get(method_name)
    if method is None or version < method.min_version:
        raise ApiError(E_NO_METHOD)
    sid = params.get("_sid") or cookie_sid
    session = state.session(sid)
    if method.auth:
        if not sid:
            raise ApiError(E_NO_PERMISSION)
        if session is None:
            raise ApiError(E_INVALID_SESSION)
        if not state.is_admin(session):
            raise ApiError(E_NO_PERMISSION)
        if method.write and state.scenario.require_synotoken:
            token = header_token or params.get("SynoToken")
            if token != session.synotoken:
                raise ApiError(E_INVALID_SESSION)
    ctx = Ctx(state=state, cgi=cgi, params=params, version=version, session=session)
    data = method.handler(ctx)
    if method.write:
        dataplane.changed(state)  # served before the API answers
    result.set_cookie_sid = ctx.set_cookie_sid
    return data


def handle(
    state: SimState,
    cgi: str,
    params: dict[str, str],
    cookie_sid: str | None = None,
    header_token: str | None = None,
) -> ApiResult:
    """Run one Web API call and return its envelope (never raises for API errors)."""
    result = ApiResult(
        payload={},
        api=params.get("api", ""),
        method=params.get("method", ""),
        version=params.get("version", ""),
    )
    try:
        data = _dispatch(state, cgi, params, cookie_sid, header_token, result)
    except ApiError as err:
        result.payload = {"success": False, "error": {"code": err.code}}
        return result
    result.payload = {"success": True}
    if data is not None:
        result.payload["data"] = data
    return result
