"""The DSM Web API subset of the simulator: ``/webapi/{query,auth,entry}.cgi``.

Pure request -> response logic (no sockets): :func:`handle` takes the CGI name, the merged
GET/POST parameters, the ``id`` cookie and the ``X-SYNO-TOKEN`` header, and returns an
:class:`ApiResult` with the JSON envelope and, for ``format=cookie`` logins, the cookie to set.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from . import crypto, dataplane, monitor
from . import filestation as fs
from .facts import errors as codes
from .facts import webapi as catalogue
from .state import (
    MAX_LUNS,
    MAX_SHARES,
    MAX_TARGETS,
    VOLUME_PATH,
    VOLUME_TOTAL_BYTES,
    Lun,
    LunSnapshot,
    Session,
    Share,
    ShareSnapshot,
    SimState,
    Target,
)

MAX_LUN_SNAPSHOTS = 256
MAX_SHARE_SNAPSHOTS = 1024

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
E_SHARE_FAILED = codes.SHARE_FAILED
E_ISCSI_BAD_TYPE = codes.ISCSI_BAD_LUN_TYPE
E_ISCSI_NO_LUN = codes.ISCSI_NO_SUCH_LUN
E_ISCSI_NO_SNAPSHOT = codes.ISCSI_NO_SUCH_SNAPSHOT
E_ISCSI_DUP_LUN = codes.ISCSI_DUPLICATE_LUN
E_ISCSI_LUN_MAX = codes.ISCSI_LUN_MAX_COUNT
E_ISCSI_TARGET_MAX = codes.ISCSI_TARGET_MAX_COUNT
E_ISCSI_SNAPSHOT_MAX = codes.ISCSI_SNAPSHOT_MAX_COUNT
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
    #: Other cookies to set (name, value).
    cookies: list[tuple[str, str]] = field(default_factory=list)
    #: A file to send as the answer instead of JSON (File Station's download).
    download: Path | None = None
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
    cookies: list[tuple[str, str]] = field(default_factory=list)
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
    """``query``: ``all`` in any case, API names, or prefixes ending in a dot
    (``SYNO.Core.ISCSI.``), comma-separated; names are matched exactly, as DSM does."""
    wanted = ctx.text("query", required=False, default="all")
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    every = any(n.lower() == "all" for n in names)
    prefixes = tuple(n for n in names if n.endswith("."))
    out: dict[str, Any] = {}
    for name, entry in catalogue.CATALOGUE.items():
        if every or name in names or (prefixes and name.startswith(prefixes)):
            out[name] = entry.info()
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


def _decrypt_params(state: SimState, sealed_raw: str) -> dict[str, str]:
    """The parameters a client sent encrypted (``__cIpHeRtExT``), to any API: an RSA-encrypted
    passphrase and the AES-encrypted url-encoded parameters, among them ``__cIpHeRtOkEn`` set to
    the ``server_time`` that ``SYNO.API.Encryption`` gave (see FACTS.md, "Encrypted
    parameters"). Raises ValueError when they do not decrypt or the token is stale."""
    try:
        sealed = json.loads(sealed_raw)
        passphrase = crypto.rsa_decrypt(state.rsa_key(), sealed["rsa"])
        plain = crypto.openssl_aes_decrypt(passphrase, sealed["aes"])
        params = dict(parse_qsl(plain.decode("utf-8"), keep_blank_values=True))
    except (ValueError, KeyError, TypeError):
        raise ValueError("undecryptable parameters") from None
    stamp = params.pop(crypto.CIPHER_TOKEN_NAME, "")
    if not stamp.isdigit() or abs(int(stamp) - int(time.time())) > crypto.TOKEN_LIFETIME:
        raise ValueError("stale cipher token")
    return params


def _encryption_getinfo(ctx: Ctx) -> dict[str, Any]:
    key = ctx.state.rsa_key()
    return {
        "cipherkey": crypto.CIPHER_KEY_NAME,
        "ciphertoken": crypto.CIPHER_TOKEN_NAME,
        "public_key": format(key.n, "X"),
        "server_time": int(time.time()),
    }


def _uiconfig_get(ctx: Ctx) -> dict[str, Any]:
    # The login page's static Noise key, base64url without padding, in cookie ``_SSID``
    # (N4S4/synology-api auth.py get_ik_message reads it); see FACTS.md, "Login handshake".
    ssid = base64.urlsafe_b64encode(ctx.state.ssid_public).decode().rstrip("=")
    ctx.cookies.append(("_SSID", ssid))
    return {
        "enable_syno_token": True,
        "login_style": "default",
        "hostname": ctx.state.hostname,
        "dsm_version": ctx.state.scenario.dsm_version,
        "support_encryption": True,
    }


def _auth_type_get(ctx: Ctx) -> list[dict[str, Any]]:
    ctx.text("account", required=False)
    # Every account logs in with a password only: no 2FA, passkey or approve-sign-in.
    return [{"type": "passwd"}]


def _auth_key_get(ctx: Ctx) -> dict[str, Any]:
    # The key a logged-in browser reads to sign later requests; the simulator has one per session.
    session = ctx.session
    return {"key": session.synotoken if session else ""}


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
    # Left out, ``offset`` is 0, ``limit`` -1 (all) and ``location`` "internal" (see FACTS.md,
    # "Parameter forms").
    offset = ctx.integer("offset", required=False, default=0)
    limit = ctx.integer("limit", required=False, default=-1)
    location = ctx.text("location", required=False, default="internal")
    if location not in ("internal", "all"):
        return {"volumes": [], "total": 0, "offset": offset}
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
            "gateway": state.gateway_ip(),
            "v6gateway": "",
            "dns_manual": False,
        }
    if kind in ("storage", "storage_v2"):
        # storage_v2: what N4S4/synology-api core_sys_info.py get_volume_info asks for
        vol = _volume(state)
        return {
            "hdd_info": [
                {
                    "diskno": "Disk 1",
                    "model": "Virtual Disk",
                    "capacity": str(VOLUME_TOTAL_BYTES + (1 << 31)),
                    "status": "normal",
                    "temp": 0,
                    "volume": "volume_1",
                }
            ],
            "vol_info": [
                {
                    "name": vol["id"],
                    "volume": vol["id"],
                    "status": vol["status"],
                    "total_size": vol["size_total_byte"],
                    "used_size": vol["size_used_byte"],
                    "desc": "",
                    "vol_desc": "",
                }
            ],
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
        "time_zone_desc": "(GMT) Coordinated Universal Time",
        "sys_temp": 0,
        "sys_tempwarn": False,
        "systempwarn": False,
        "temperature_warning": False,
        "enabled_ntp": False,
        "ntp_server": "time.google.com",
        "cpu_clock_speed": 0,
        "cpu_series": "QEMU Virtual CPU",
        "support_esata": "no",
        "sata_dev": [],
        "usb_dev": [],
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
    # the name may be in ``shareinfo`` only
    name = ctx.text("name", required=False)
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


def _share_info_arg(ctx: Ctx) -> dict[str, Any]:
    info = ctx.value("shareinfo")
    if not isinstance(info, dict):
        raise ApiError(E_SHARE_INVALID)
    return info


def _quota_mb(info: dict[str, Any], default: int) -> int:
    """``share_quota`` in MB (the driver's QuotaForCreate, synology-csi share.go ShareInfo)."""
    raw = info.get("share_quota", default)
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ApiError(E_SHARE_INVALID)
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(E_SHARE_INVALID) from None
    if value < 0:
        raise ApiError(E_SHARE_INVALID)
    return value


def _share_set(ctx: Ctx) -> None:
    name = ctx.text("name")
    info = _share_info_arg(ctx)
    with ctx.state.lock:
        share = _find_share(ctx.state, name)
        if share is None:
            raise ApiError(E_SHARE_NONE)
        if str(info.get("vol_path", share.vol_path)) != share.vol_path:
            raise ApiError(E_SHARE_INVALID)
        new_name = str(info.get("name") or share.name)
        if not _share_name_ok(new_name):
            raise ApiError(E_SHARE_INVALID)
        other = _find_share(ctx.state, new_name)
        if other is not None and other is not share:
            raise ApiError(E_SHARE_EXISTS)
        share.quota_value = _quota_mb(info, share.quota_value)
        for key in ("desc",):
            if key in info:
                share.desc = str(info[key])
        for flag in ("enable_recycle_bin", "recycle_bin_admin_only"):
            if flag in info:
                setattr(share, flag, bool(info[flag]))
        if new_name != share.name:
            del ctx.state.shares[share.name]
            share.name = new_name
            ctx.state.shares[new_name] = share


def _share_clone(ctx: Ctx) -> dict[str, Any]:
    name = ctx.text("name", required=False)
    snapshot = ctx.text("snapshot", required=False)
    info = _share_info_arg(ctx)
    name = str(info.get("name") or name)
    vol_path = str(info.get("vol_path", ""))
    source_name = str(info.get("name_org", ""))
    if not _share_name_ok(name) or vol_path != VOLUME_PATH:
        raise ApiError(E_SHARE_INVALID)
    state = ctx.state
    with state.lock:
        source = _find_share(state, source_name)
        # A missing source, or a snapshot not of that source, is 3300 (synology-csi
        # pkg/dsm/webapi/share.go ShareClone).
        if source is None or source.vol_path != vol_path:
            raise ApiError(E_SHARE_FAILED)
        if snapshot and not any(snap.time == snapshot for snap in source.snapshots):
            raise ApiError(E_SHARE_FAILED)
        if _find_share(state, name) is not None:
            raise ApiError(E_SHARE_EXISTS)
        if len(state.shares) >= MAX_SHARES:
            raise ApiError(E_SHARE_MAX)
        share = Share(
            name=name,
            vol_path=vol_path,
            desc=str(info.get("desc", "")),
            enable_recycle_bin=bool(info.get("enable_recycle_bin", source.enable_recycle_bin)),
            recycle_bin_admin_only=bool(
                info.get("recycle_bin_admin_only", source.recycle_bin_admin_only)
            ),
            enable_share_cow=source.enable_share_cow,
            quota_value=source.quota_value,
        )
        state.shares[name] = share
    return {"name": name}


def _snapshot_time(share: Share) -> str:
    """DSM names a share snapshot by its time in the form ``GMT+08-2022.01.14-19.18.29``
    (synology-csi pkg/dsm/webapi/share.go ShareSnapshotCreate); the simulator runs in UTC and
    takes the next free second when two land in one."""
    now = int(time.time())
    taken = {snap.time for snap in share.snapshots}
    while True:
        name = time.strftime("GMT+00-%Y.%m.%d-%H.%M.%S", time.gmtime(now))
        if name not in taken:
            return name
        now += 1


def _share_snapshot_create(ctx: Ctx) -> str:
    name = ctx.text("name")
    info = ctx.value("snapinfo", required=False, default={})
    if not isinstance(info, dict):
        raise ApiError(E_SHARE_INVALID)
    with ctx.state.lock:
        share = _find_share(ctx.state, name)
        if share is None:
            raise ApiError(E_SHARE_NONE)
        if len(share.snapshots) >= MAX_SHARE_SNAPSHOTS:
            raise ApiError(E_SHARE_MAX)
        snap = ShareSnapshot(
            time=_snapshot_time(share),
            desc=str(info.get("desc", "")),
            lock=bool(info.get("lock", True)),
        )
        share.snapshots.append(snap)
    return snap.time


def _share_snapshot_list(ctx: Ctx) -> dict[str, Any]:
    name = ctx.text("name")
    offset = ctx.integer("offset", required=False, default=0)
    limit = ctx.integer("limit", required=False, default=-1)
    with ctx.state.lock:
        share = _find_share(ctx.state, name)
        if share is None:
            raise ApiError(E_SHARE_NONE)
        snaps = [snap.to_json() for snap in share.snapshots]
    total = len(snaps)
    snaps = snaps[max(offset, 0) :]
    if limit >= 0:
        snaps = snaps[:limit]
    return {"snapshots": snaps, "total": total}


def _share_snapshot_delete(ctx: Ctx) -> list[dict[str, Any]]:
    name = ctx.text("name")
    wanted = ctx.string_list("snapshots", required=True)
    with ctx.state.lock:
        share = _find_share(ctx.state, name)
        if share is None:
            raise ApiError(E_SHARE_NONE)
        # The answer lists the snapshots that could not be deleted (synology-csi share.go
        # ShareSnapshotDelete treats a non-empty list as failure).
        failed = [
            {"snapshot": t, "error": E_SHARE_FAILED}
            for t in wanted
            if not any(s.time == t for s in share.snapshots)
        ]
        share.snapshots = [s for s in share.snapshots if s.time not in wanted]
    return failed


_RULE_FIELDS: dict[str, type] = {
    "async": bool,
    "client": str,
    "crossmnt": bool,
    "insecure": bool,
    "privilege": str,
    "root_squash": str,
}
_FLAVORS = ("kerberos", "kerberos_integrity", "kerberos_privacy", "sys")


def _nfs_rule(raw: Any) -> dict[str, Any]:
    """One NFS rule as DSM stores it (synology-csi share.go PrivilegeRule)."""
    if not isinstance(raw, dict) or not str(raw.get("client", "")):
        raise ApiError(E_INVALID_PARAM)
    rule: dict[str, Any] = {}
    for key, kind in _RULE_FIELDS.items():
        value = raw.get(key, False if kind is bool else "")
        if not isinstance(value, kind):
            raise ApiError(E_INVALID_PARAM)
        rule[key] = value
    if rule["privilege"] not in ("rw", "ro"):
        raise ApiError(E_INVALID_PARAM)
    if rule["root_squash"] not in ("root", "no_root_squash", "all", "root_squash", "all_squash"):
        raise ApiError(E_INVALID_PARAM)
    flavor = raw.get("security_flavor", {"sys": True})
    if not isinstance(flavor, dict):
        raise ApiError(E_INVALID_PARAM)
    rule["security_flavor"] = {f: bool(flavor.get(f, False)) for f in _FLAVORS}
    return rule


def _nfs_privilege_load(ctx: Ctx) -> dict[str, Any]:
    name = ctx.text("share_name")
    with ctx.state.lock:
        share = _find_share(ctx.state, name)
        if share is None:
            raise ApiError(E_SHARE_NONE)
        return {"share_name": share.name, "rule": [dict(r) for r in share.nfs_rules]}


def _nfs_privilege_save(ctx: Ctx) -> None:
    name = ctx.text("share_name")
    rules = ctx.value("rule")
    if not isinstance(rules, list):
        raise ApiError(E_INVALID_PARAM)
    parsed = [_nfs_rule(r) for r in rules]
    with ctx.state.lock:
        share = _find_share(ctx.state, name)
        if share is None:
            raise ApiError(E_SHARE_NONE)
        share.nfs_rules = parsed


_USER_GROUP_TYPES = ("local_user", "local_group", "system")


def _principals(state: SimState, kind: str) -> list[tuple[str, bool]]:
    """(name, is_admin) of the users or groups DSM lists for ``kind``."""
    if kind == "local_user":
        users = [("admin", True), ("guest", False)]
        if state.account is not None and state.account.name not in ("admin", "guest"):
            users.insert(0, (state.account.name, True))
        return users
    if kind == "local_group":
        return [("administrators", True), ("http", False), ("users", False)]
    return [("everyone", False)]


def _share_permission_list(ctx: Ctx) -> dict[str, Any]:
    name = ctx.text("name")
    kind = ctx.text("user_group_type")
    if kind not in _USER_GROUP_TYPES:
        raise ApiError(E_INVALID_PARAM)
    with ctx.state.lock:
        share = _find_share(ctx.state, name)
        if share is None:
            raise ApiError(E_SHARE_NONE)
        given = share.permissions.get(kind, {})
        items = []
        for principal, is_admin in _principals(ctx.state, kind):
            perm = given.get(principal, {})
            items.append(
                {
                    "name": principal,
                    "is_readonly": bool(perm.get("is_readonly", False)),
                    "is_writable": bool(perm.get("is_writable", False)),
                    "is_deny": bool(perm.get("is_deny", False)),
                    "is_custom": bool(perm.get("is_custom", False)),
                    "is_admin": is_admin,
                }
            )
    return {"items": items, "total": len(items)}


def _share_permission_set(ctx: Ctx) -> None:
    name = ctx.text("name")
    kind = ctx.text("user_group_type")
    perms = ctx.value("permissions")
    if kind not in _USER_GROUP_TYPES or not isinstance(perms, list):
        raise ApiError(E_INVALID_PARAM)
    with ctx.state.lock:
        share = _find_share(ctx.state, name)
        if share is None:
            raise ApiError(E_SHARE_NONE)
        known = {p for p, _ in _principals(ctx.state, kind)}
        table = share.permissions.setdefault(kind, {})
        for perm in perms:
            if not isinstance(perm, dict) or str(perm.get("name", "")) not in known:
                raise ApiError(E_SHARE_INVALID)
            table[str(perm["name"])] = {
                k: bool(perm.get(k, False))
                for k in ("is_readonly", "is_writable", "is_deny", "is_custom")
            }


# -- Network and monitoring -------------------------------------------------------------------


def _interfaces(state: SimState) -> list[dict[str, Any]]:
    return [
        {
            "ifname": "eth0",
            "ip": state.guest_ip(),
            "mask": "255.255.255.0",
            "speed": 1000,
            "status": "connected",
            "type": "lan",
            "use_dhcp": True,
            "mac": state.mac_address(),
        }
    ]


def _network_interface_list(ctx: Ctx) -> list[dict[str, Any]]:
    # ``relay_node`` names a controller of a two-node system; a Virtual DSM has one.
    return _interfaces(ctx.state)


def _dsm_network_list(ctx: Ctx) -> dict[str, Any]:
    state = ctx.state
    return {
        "hostname": state.hostname,
        "gateway": state.gateway_ip(),
        "dns": ["10.0.2.3"],
        "workgroup": state.smb["workgroup"],
        "interfaces": [
            {
                "id": i["ifname"],
                "ip": [{"address": i["ip"], "netmask": i["mask"]}],
                "ipv6": [],
                "mac": i["mac"],
                "type": "lan",
            }
            for i in _interfaces(state)
        ],
    }


def _filestation_info(ctx: Ctx) -> dict[str, Any]:
    return {
        "hostname": ctx.state.hostname,
        "is_manager": True,
        "support_sharing": True,
        "support_vfs": True,
        "support_virtual_protocol": ["cifs", "iso"],
        "uid": 1026,
        "system_codepage": "enu",
    }


def _fail(code: int) -> ApiError:
    return ApiError(code)


def _fs_paths(ctx: Ctx, name: str) -> list[str]:
    """Paths as a JSON list, or one path, or comma-separated paths (File Station API guide)."""
    value = ctx.value(name)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, str) and value:
        return [v for v in value.split(",") if v] if not value.startswith("[") else [value]
    raise ApiError(codes.FS_INVALID_PARAMETER)


def _fs_additional(ctx: Ctx) -> list[str]:
    return ctx.string_list("additional") if ctx.has("additional") else []


def _fs_page(ctx: Ctx, entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int, int]:
    """``sort_by``, ``sort_direction``, ``offset`` and ``limit`` (0: all) applied."""
    by = ctx.text("sort_by", required=False, default="name")
    direction = ctx.text("sort_direction", required=False, default="asc")
    if by not in fs._SORT_KEYS or direction not in ("asc", "desc"):
        raise ApiError(codes.FS_INVALID_PARAMETER)
    offset = max(ctx.integer("offset", required=False, default=0), 0)
    limit = ctx.integer("limit", required=False, default=0)
    ordered = fs.sort_entries(entries, by, direction)
    total = len(ordered)
    page = ordered[offset:]
    if limit > 0:
        page = page[:limit]
    return page, total, offset


def _fs_sort_needs(ctx: Ctx, additional: list[str]) -> list[str]:
    """The additional fields sorting needs, besides those asked for (removed afterwards)."""
    by = ctx.text("sort_by", required=False, default="name")
    need = {"size": "size", "user": "owner", "group": "owner", "posix": "perm", "type": "type"}
    if by in ("mtime", "atime", "ctime", "crtime"):
        return sorted(set(additional) | {"time"})
    return sorted(set(additional) | ({need[by]} if by in need else set()))


def _fs_trim(entries: list[dict[str, Any]], additional: list[str]) -> list[dict[str, Any]]:
    for e in entries:
        add = e.get("additional")
        if add is None:
            continue
        if not additional:
            del e["additional"]
            continue
        for key in list(add):
            if key not in additional:
                del add[key]
    return entries


def _filestation_list_share(ctx: Ctx) -> dict[str, Any]:
    additional = _fs_additional(ctx)
    wanted = _fs_sort_needs(ctx, additional)
    with ctx.state.lock:
        names = [s.name for s in ctx.state.shares.values()]
    entries = [
        fs.entry(ctx.state, fs.resolve(ctx.state, "/" + n, _fail), wanted, share=True)
        for n in names
    ]
    page, total, offset = _fs_page(ctx, entries)
    return {"shares": _fs_trim(page, additional), "total": total, "offset": offset}


def _filestation_list(ctx: Ctx) -> dict[str, Any]:
    folder = ctx.text("folder_path")
    real = fs.resolve(ctx.state, folder, _fail)
    if not real.is_dir():
        raise ApiError(codes.FS_NO_SUCH_FILE)
    additional = _fs_additional(ctx)
    wanted = _fs_sort_needs(ctx, additional)
    patterns = ctx.string_list("pattern") if ctx.has("pattern") else []
    filetype = ctx.text("filetype", required=False, default="all")
    if filetype not in ("all", "file", "dir"):
        raise ApiError(codes.FS_INVALID_PARAMETER)
    entries = []
    for child in real.iterdir():
        if child.name.startswith(("@", "#")) or not fs.matches(child.name, patterns):
            continue
        if filetype != "all" and child.is_dir() != (filetype == "dir"):
            continue
        entries.append(fs.entry(ctx.state, child, wanted))
    page, total, offset = _fs_page(ctx, entries)
    return {"files": _fs_trim(page, additional), "total": total, "offset": offset}


def _filestation_getinfo(ctx: Ctx) -> dict[str, Any]:
    additional = _fs_additional(ctx)
    files = []
    for path in _fs_paths(ctx, "path"):
        real = fs.resolve(ctx.state, path, _fail)
        if not real.exists():
            raise ApiError(codes.FS_NO_SUCH_FILE)
        files.append(fs.entry(ctx.state, real, additional))
    return {"files": files}


def _fs_name_ok(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..") and len(name) <= 255


def _filestation_create_folder(ctx: Ctx) -> dict[str, Any]:
    parents = _fs_paths(ctx, "folder_path")
    names = _fs_paths(ctx, "name")
    force = ctx.boolean("force_parent", required=False)
    additional = _fs_additional(ctx)
    if len(parents) != len(names) and len(parents) != 1:
        raise ApiError(codes.FS_INVALID_PARAMETER)
    folders = []
    for i, name in enumerate(names):
        parent = fs.resolve(ctx.state, parents[i if len(parents) > 1 else 0], _fail)
        if not _fs_name_ok(name):
            raise ApiError(codes.FS_ILLEGAL_NAME)
        target = parent / name
        try:
            target.mkdir(parents=force, exist_ok=force)
        except FileExistsError:
            raise ApiError(codes.FS_CREATE_FOLDER_FAILED) from None
        except FileNotFoundError:
            raise ApiError(codes.FS_NO_SUCH_FILE) from None
        folders.append(fs.entry(ctx.state, target, additional))
    return {"folders": folders}


def _filestation_rename(ctx: Ctx) -> dict[str, Any]:
    paths = _fs_paths(ctx, "path")
    names = _fs_paths(ctx, "name")
    additional = _fs_additional(ctx)
    if len(paths) != len(names):
        raise ApiError(codes.FS_INVALID_PARAMETER)
    files = []
    for path, name in zip(paths, names, strict=True):
        real = fs.resolve(ctx.state, path, _fail)
        if not real.exists() or len(real.relative_to(fs.volume_root(ctx.state)).parts) < 2:
            raise ApiError(codes.FS_NO_SUCH_FILE)
        if not _fs_name_ok(name):
            raise ApiError(codes.FS_ILLEGAL_NAME)
        target = real.with_name(name)
        if target.exists():
            raise ApiError(codes.FS_FILE_EXISTS)
        real.rename(target)
        files.append(fs.entry(ctx.state, target, additional))
    return {"files": files}


def _fs_remove(real: Path) -> None:
    if real.is_dir() and not real.is_symlink():
        shutil.rmtree(real)
    else:
        real.unlink()


def _fs_targets(ctx: Ctx, name: str) -> list[Path]:
    """Existing files inside a shared folder (not the shared folder itself)."""
    out = []
    for path in _fs_paths(ctx, name):
        real = fs.resolve(ctx.state, path, _fail)
        if not real.exists() or len(real.relative_to(fs.volume_root(ctx.state)).parts) < 2:
            raise ApiError(codes.FS_NO_SUCH_FILE)
        out.append(real)
    return out


def _filestation_delete(ctx: Ctx) -> None:
    """``delete``: the blocking form (version 2)."""
    for real in _fs_targets(ctx, "path"):
        _fs_remove(real)


def _filestation_delete_start(ctx: Ctx) -> dict[str, Any]:
    targets = _fs_targets(ctx, "path")
    state = ctx.state

    def work(task: fs.Task) -> None:
        task.result = {"processed_num": 0, "total": len(targets), "progress": 0.0, "path": ""}
        for i, real in enumerate(targets, start=1):
            if task.cancel.is_set():
                return
            _fs_remove(real)
            task.result = {
                "processed_num": i,
                "total": len(targets),
                "progress": i / len(targets),
                "path": fs.dsm_path_of(state, real),
                "processing_path": fs.dsm_path_of(state, real),
            }

    return {"taskid": fs.start_task("delete", work)}


def _filestation_copymove_start(ctx: Ctx) -> dict[str, Any]:
    sources = _fs_targets(ctx, "path")
    dest_path = ctx.text("dest_folder_path")
    dest = fs.resolve(ctx.state, dest_path, _fail)
    if not dest.is_dir():
        raise ApiError(codes.FS_NO_SUCH_FILE)
    overwrite_given = ctx.has("overwrite")
    overwrite = ctx.boolean("overwrite", required=False)
    remove_src = ctx.boolean("remove_src", required=False)
    for real in sources:
        if (dest / real.name).exists() and not overwrite_given:
            # Without ``overwrite`` an existing destination is an error (File Station API
            # guide, CopyMove: "overwrite ... If not specified, an error will be returned").
            raise ApiError(codes.FS_FILE_EXISTS)
    state = ctx.state

    def work(task: fs.Task) -> None:
        total = len(sources)
        task.result = {"dest_folder_path": dest_path, "progress": 0.0, "processed_size": 0}
        done = 0
        for real in sources:
            if task.cancel.is_set():
                return
            target = dest / real.name
            if target.exists():
                if not overwrite:
                    continue
                _fs_remove(target)
            if remove_src:
                shutil.move(str(real), str(target))
            elif real.is_dir():
                shutil.copytree(real, target)
            else:
                shutil.copyfile(real, target)
            done += 1
            task.result = {
                "dest_folder_path": dest_path,
                "path": fs.dsm_path_of(state, real),
                "processing_path": fs.dsm_path_of(state, real),
                "progress": done / total,
                "processed_size": 0,
                "total": total,
            }

    return {"taskid": fs.start_task("copymove", work)}


def _filestation_dirsize_start(ctx: Ctx) -> dict[str, Any]:
    paths = [fs.resolve(ctx.state, p, _fail) for p in _fs_paths(ctx, "path")]
    if not all(p.exists() for p in paths):
        raise ApiError(codes.FS_NO_SUCH_FILE)
    return {"taskid": fs.start_task("dirsize", lambda task: fs.dir_size(task, paths))}


def _filestation_md5_start(ctx: Ctx) -> dict[str, Any]:
    real = fs.resolve(ctx.state, ctx.text("file_path"), _fail)
    if not real.is_file():
        raise ApiError(codes.FS_NO_SUCH_FILE)
    return {"taskid": fs.start_task("md5", lambda task: fs.md5(task, real))}


def _fs_status(kind: str) -> Handler:
    def status(ctx: Ctx) -> dict[str, Any]:
        task = fs.get_task(ctx.text("taskid"), kind)
        if task is None:
            raise ApiError(codes.FS_NO_SUCH_TASK)
        finished = task.finished
        if finished and task.error:
            raise ApiError(task.error)
        return {"finished": finished, **task.result}

    return status


def _fs_stop(kind: str) -> Handler:
    def stop(ctx: Ctx) -> None:
        taskid = ctx.text("taskid")
        if fs.get_task(taskid, kind) is None:
            raise ApiError(codes.FS_NO_SUCH_TASK)
        fs.drop_task(taskid)

    return stop


def _filestation_upload(ctx: Ctx) -> dict[str, Any]:
    """``upload``: the multipart body's file (streamed to ``__upload_file`` by the server) into
    ``path``. ``overwrite``: true replaces, false skips (``"overwrite"``/``"skip"`` in v3);
    left out, an existing file is 1805 (File Station API guide, Upload)."""
    tmp = ctx.params.get("__upload_file", "")
    name = ctx.params.get("__upload_name", "")
    if not tmp:
        raise ApiError(codes.FS_UPLOAD_INCOMPLETE)
    if not name:
        raise ApiError(codes.FS_UPLOAD_NO_FILENAME)
    folder = fs.resolve(ctx.state, ctx.text("path"), _fail)
    create_parents = ctx.boolean("create_parents", required=False)
    raw = ctx.text("overwrite", required=False, default="").lower()
    if raw not in ("", "true", "false", "overwrite", "skip"):
        raise ApiError(codes.FS_INVALID_PARAMETER)
    if not folder.is_dir():
        if not create_parents:
            raise ApiError(codes.FS_NO_SUCH_FILE)
        folder.mkdir(parents=True)
    if not _fs_name_ok(name):
        raise ApiError(codes.FS_ILLEGAL_NAME)
    target = folder / name
    skip = False
    if target.exists():
        if raw == "":
            raise ApiError(codes.FS_UPLOAD_EXISTS)
        skip = raw in ("false", "skip")
    if not skip:
        os.replace(tmp, target)
        for stamp in ("mtime", "atime"):
            if ctx.has(stamp):
                ms = ctx.integer(stamp)
                st = target.stat()
                times = (ms / 1000, st.st_mtime) if stamp == "atime" else (st.st_atime, ms / 1000)
                os.utime(target, times)
    return {"blSkip": skip, "file": name, "pid": os.getpid(), "progress": 100}


def _filestation_download(ctx: Ctx) -> None:
    """``download``: one file's bytes (a folder or several paths: 400, the simulator's
    choice; DSM zips them)."""
    paths = _fs_paths(ctx, "path")
    ctx.text("mode", required=False, default="open")  # open or download: the same bytes
    if len(paths) != 1:
        raise ApiError(codes.FS_INVALID_PARAMETER)
    real = fs.resolve(ctx.state, paths[0], _fail)
    if not real.exists():
        raise ApiError(codes.FS_NO_SUCH_FILE)
    if not real.is_file():
        raise ApiError(codes.FS_INVALID_PARAMETER)
    ctx.extra["download"] = real


def _storage_load_info(ctx: Ctx) -> dict[str, Any]:
    return monitor.load_info(ctx.state)


def _utilization_get(ctx: Ctx) -> dict[str, Any]:
    return monitor.utilization()


def _network_get(ctx: Ctx) -> dict[str, Any]:
    return monitor.network_get(ctx.state)


def _security_status(ctx: Ctx) -> dict[str, Any]:
    return monitor.security_status()


def _upgrade_check(ctx: Ctx) -> dict[str, Any]:
    return monitor.upgrade_check()


def _external_usb_list(ctx: Ctx) -> dict[str, Any]:
    ctx.string_list("additional")
    return monitor.external_usb_list()


def _fan_speed_get(ctx: Ctx) -> dict[str, Any]:
    return monitor.fan_speed()


# -- iSCSI ------------------------------------------------------------------------------------


def _get_lun(state: SimState, uuid: str) -> Lun:
    """The LUN whose uuid, or else whose name, is ``uuid``: DSM's ``get`` takes either (the CSI
    driver looks LUNs up by name: synology-csi pkg/dsm/service/dsm.go createVolumeByDsm)."""
    lun = state.luns.get(uuid)
    if lun is None:
        lun = next((x for x in state.luns.values() if x.name == uuid), None)
    if lun is None:
        raise ApiError(E_ISCSI_NO_LUN)
    return lun


def _get_target(state: SimState, raw: str) -> Target:
    """The target whose id, or else whose name, is ``raw`` (the CSI driver's TargetGet passes the
    name: synology-csi pkg/dsm/service/dsm.go createMappingTarget)."""
    target = None
    if raw.isdigit():
        target = state.targets.get(int(raw))
    if target is None:
        target = next((t for t in state.targets.values() if t.name == raw), None)
    if target is None:
        raise ApiError(E_ISCSI_BAD_TARGET)
    return target


def _find_snapshot(state: SimState, snapshot_uuid: str) -> tuple[Lun, LunSnapshot]:
    for lun in state.luns.values():
        for snap in lun.snapshots:
            if snap.uuid == snapshot_uuid:
                return lun, snap
    raise ApiError(E_ISCSI_NO_SNAPSHOT)


def _lun_list(ctx: Ctx) -> dict[str, Any]:
    # ``types`` filters by type name, as DSM does (synology-csi pkg/dsm/webapi/iscsi.go LunList
    # sends every type it knows); without it DSM lists every LUN.
    types = set(ctx.string_list("types")) if ctx.has("types") else None
    with ctx.state.lock:
        luns = [
            lun.to_json()
            for lun in ctx.state.luns.values()
            if types is None or lun.lun_type in types
        ]
    return {"luns": luns}


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
    dev_attribs = ctx.value("dev_attribs", required=False, default=[])
    if not isinstance(dev_attribs, list) or size <= 0:
        raise ApiError(E_INVALID_PARAM)
    if lun_type not in LUN_TYPES:
        raise ApiError(E_ISCSI_BAD_TYPE)
    if location != VOLUME_PATH:
        raise ApiError(E_INVALID_PARAM)
    with ctx.state.lock:
        lun = _add_lun(ctx.state, name, size, lun_type, location)
        lun.description = description
        lun.dev_attribs = [
            {"dev_attrib": str(a.get("dev_attrib", "")), "enable": int(a.get("enable", 0))}
            for a in dev_attribs
            if isinstance(a, dict)
        ]
    return {"uuid": lun.uuid}


def _lun_delete(ctx: Ctx) -> None:
    # One LUN by ``uuid``, or several by ``uuids`` (a JSON list) with ``uuid`` empty: N4S4/
    # synology-api core_iscsi.py ``delete`` sends ``uuid=""`` and ``uuids=[...]``.
    wanted = ctx.string_list("uuids") if ctx.has("uuids") else []
    single = ctx.text("uuid", required=not wanted, default="")
    if single:
        wanted.insert(0, single)
    if not wanted:
        raise ApiError(E_LOST_PARAM)
    with ctx.state.lock:
        luns = [_get_lun(ctx.state, raw) for raw in wanted]
        for lun in luns:
            uuid = lun.uuid
            if uuid not in ctx.state.luns:
                continue
            for snap in lun.snapshots:
                dataplane.forget_snapshot(snap.uuid)
            del ctx.state.luns[uuid]
            for target in ctx.state.targets.values():
                if uuid in target.mapped:
                    target.mapped.remove(uuid)


def _lun_set(ctx: Ctx) -> None:
    raw = ctx.text("uuid")
    new_size = ctx.integer("new_size", required=False, default=0)
    new_name = ctx.text("new_name", required=False)
    state = ctx.state
    with state.lock:
        lun = _get_lun(state, raw)
        if new_size:
            if new_size < lun.size:
                # DSM cannot shrink a LUN.
                raise ApiError(E_INVALID_PARAM)
            if lun.thick and new_size - lun.size > state.volume_free_bytes():
                raise ApiError(E_ISCSI_NO_SPACE)
            lun.size = new_size
        if new_name:
            if any(x.name == new_name and x is not lun for x in state.luns.values()):
                raise ApiError(E_ISCSI_DUP_LUN)
            lun.name = new_name


def _add_lun(state: SimState, name: str, size: int, lun_type: str, location: str) -> Lun:
    """Create a LUN under the lock; DSM's checks of name, count and space."""
    if not name or len(name) > 128:
        raise ApiError(E_INVALID_PARAM)
    if any(lun.name == name for lun in state.luns.values()):
        raise ApiError(E_ISCSI_DUP_LUN)
    if len(state.luns) >= MAX_LUNS:
        raise ApiError(E_ISCSI_LUN_MAX)
    lun = Lun(name=name, size=size, lun_type=lun_type, location=location)
    limit = state.volume_free_bytes() if lun.thick else 1 << 50
    if size > limit:
        raise ApiError(E_ISCSI_NO_SPACE)
    lun.lun_id = state.next_lun_id
    state.next_lun_id += 1
    state.luns[lun.uuid] = lun
    return lun


def _lun_clone(ctx: Ctx) -> dict[str, Any]:
    src = ctx.text("src_lun_uuid")
    name = ctx.text("dst_lun_name")
    location = ctx.text("dst_location", required=False)
    state = ctx.state
    with state.lock:
        source = _get_lun(state, src)
        location = location or source.location
        if location != VOLUME_PATH:
            raise ApiError(E_INVALID_PARAM)
        # A clone is done at once here (is_action_locked stays false): the driver waits while
        # it is true (synology-csi pkg/dsm/service/dsm.go waitCloneFinished).
        lun = _add_lun(state, name, source.size, source.lun_type, location)
        lun.dev_attribs = list(source.dev_attribs)
        dataplane.clone_lun(lun.uuid, lun_uuid=source.uuid)
    return {"dst_lun_uuid": lun.uuid}


def _lun_take_snapshot(ctx: Ctx) -> dict[str, Any]:
    src = ctx.text("src_lun_uuid")
    name = ctx.text("snapshot_name")
    description = ctx.text("description", required=False)
    taken_by = ctx.text("taken_by", required=False)
    is_locked = ctx.boolean("is_locked", required=False)
    ctx.boolean("is_app_consistent", required=False)
    state = ctx.state
    with state.lock:
        lun = _get_lun(state, src)
        if not name or len(name) > 128:
            raise ApiError(E_INVALID_PARAM)
        if len(lun.snapshots) >= MAX_LUN_SNAPSHOTS:
            raise ApiError(E_ISCSI_SNAPSHOT_MAX)
        snap = LunSnapshot(
            name=name,
            parent_uuid=lun.uuid,
            total_size=lun.size,
            root_path=lun.location,
            description=description,
            taken_by=taken_by,
            is_locked=is_locked,
        )
        lun.snapshots.append(snap)
        dataplane.snapshot_lun(lun.uuid, snap.uuid)
    return {"snapshot_uuid": snap.uuid}


def _lun_list_snapshot(ctx: Ctx) -> dict[str, Any]:
    src = ctx.text("src_lun_uuid")
    with ctx.state.lock:
        lun = _get_lun(ctx.state, src)
        return {"snapshots": [snap.to_json() for snap in lun.snapshots]}


def _lun_get_snapshot(ctx: Ctx) -> dict[str, Any]:
    snapshot_uuid = ctx.text("snapshot_uuid")
    with ctx.state.lock:
        _, snap = _find_snapshot(ctx.state, snapshot_uuid)
        return {"snapshot": snap.to_json()}


def _lun_delete_snapshot(ctx: Ctx) -> None:
    snapshot_uuid = ctx.text("snapshot_uuid")
    with ctx.state.lock:
        lun, snap = _find_snapshot(ctx.state, snapshot_uuid)
        lun.snapshots.remove(snap)
        dataplane.forget_snapshot(snap.uuid)


def _lun_clone_snapshot(ctx: Ctx) -> dict[str, Any]:
    src = ctx.text("src_lun_uuid")
    snapshot_uuid = ctx.text("snapshot_uuid")
    name = ctx.text("cloned_lun_name")
    state = ctx.state
    with state.lock:
        lun, snap = _find_snapshot(state, snapshot_uuid)
        if _get_lun(state, src) is not lun:
            raise ApiError(E_ISCSI_NO_SNAPSHOT)
        clone = _add_lun(state, name, snap.total_size, lun.lun_type, lun.location)
        clone.dev_attribs = list(lun.dev_attribs)
        dataplane.clone_lun(clone.uuid, snapshot_uuid=snap.uuid)
    return {"cloned_lun_uuid": clone.uuid}


def _target_ids(ctx: Ctx) -> list[str]:
    value = ctx.value("target_ids")
    ids = value if isinstance(value, list) else [value]
    if not ids:
        raise ApiError(E_INVALID_PARAM)
    return [str(i) for i in ids]


def _lun_map_target(ctx: Ctx) -> None:
    raw = ctx.text("uuid")
    ids = _target_ids(ctx)
    with ctx.state.lock:
        uuid = _get_lun(ctx.state, raw).uuid
        targets = [_get_target(ctx.state, i) for i in ids]
        for target in targets:
            if uuid not in target.mapped:
                target.mapped.append(uuid)


def _lun_unmap_target(ctx: Ctx) -> None:
    raw = ctx.text("uuid")
    ids = _target_ids(ctx)
    with ctx.state.lock:
        uuid = _get_lun(ctx.state, raw).uuid
        for target in [_get_target(ctx.state, i) for i in ids]:
            if uuid in target.mapped:
                target.mapped.remove(uuid)


def _target_map_lun(ctx: Ctx) -> None:
    """``map_lun``/``unmap_lun`` of a target: ``lun_uuids`` a JSON list (N4S4/synology-api
    core_iscsi.py ``Target.map_lun``), the reverse of LUN ``map_target``."""
    raw = ctx.text("target_id")
    wanted = ctx.string_list("lun_uuids", required=True)
    with ctx.state.lock:
        target = _get_target(ctx.state, raw)
        for uuid in [_get_lun(ctx.state, u).uuid for u in wanted]:
            if uuid not in target.mapped:
                target.mapped.append(uuid)


def _target_unmap_lun(ctx: Ctx) -> None:
    raw = ctx.text("target_id")
    wanted = ctx.string_list("lun_uuids", required=True)
    with ctx.state.lock:
        target = _get_target(ctx.state, raw)
        for uuid in [_get_lun(ctx.state, u).uuid for u in wanted]:
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


def _target_set(ctx: Ctx) -> None:
    raw = ctx.text("target_id")
    max_sessions = ctx.integer("max_sessions", required=False, default=-1)
    new_name = ctx.text("new_name", required=False)
    with ctx.state.lock:
        target = _get_target(ctx.state, raw)
        if max_sessions != -1:
            # 0 means "no limit" (the driver's multi-session setting: synology-csi
            # pkg/dsm/service/dsm.go createMappingTarget).
            if max_sessions < 0:
                raise ApiError(E_INVALID_PARAM)
            target.max_sessions = max_sessions
        if new_name:
            target.name = new_name


def _target_delete(ctx: Ctx) -> None:
    raw = ctx.text("target_id")
    with ctx.state.lock:
        target = _get_target(ctx.state, raw)
        del ctx.state.targets[target.target_id]


# -- SYNO.Entry.Request ----------------------------------------------------------------------


def _entry_request(ctx: Ctx) -> dict[str, Any]:
    """The compound form: ``compound`` is a JSON list of calls (``api``, ``method``,
    ``version`` and their parameters), run in order under the caller's session;
    ``stop_when_error`` stops at the first failure. Answers ``{"has_fail", "result": [{api,
    method, version, success, data | error}]}`` (see FACTS.md, "Compound requests")."""
    calls = ctx.value("compound")
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise ApiError(E_INVALID_PARAM)
    stop = ctx.boolean("stop_when_error", required=False)
    results: list[dict[str, Any]] = []
    has_fail = False
    for call in calls:
        params = {
            str(k): v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
            for k, v in call.items()
        }
        if ctx.has("_sid") and "_sid" not in params:
            params["_sid"] = ctx.params["_sid"]
        sub = ApiResult(payload={})
        entry: dict[str, Any] = {
            "api": call.get("api", ""),
            "method": call.get("method", ""),
            "version": call.get("version", ""),
        }
        try:
            if params.get("api") == "SYNO.Entry.Request":
                raise ApiError(E_INVALID_PARAM)
            data = _dispatch(
                ctx.state,
                ctx.cgi,
                params,
                ctx.extra.get("cookie_sid"),
                ctx.extra.get("header_token"),
                sub,
            )
        except ApiError as err:
            has_fail = True
            entry.update({"success": False, "error": {"code": err.code}})
            results.append(entry)
            if stop:
                break
            continue
        entry["success"] = True
        if data is not None:
            entry["data"] = data
        ctx.cookies.extend(sub.cookies)
        results.append(entry)
    return {"has_fail": has_fail, "result": results}


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
    Api(
        "SYNO.API.Encryption",
        {"getinfo": Method(_encryption_getinfo, auth=False)},
        cgis=("encryption.cgi", "entry.cgi"),
    ),
    Api("SYNO.API.Auth.UIConfig", {"get": Method(_uiconfig_get, auth=False)}),
    Api("SYNO.API.Auth.Type", {"get": Method(_auth_type_get, auth=False)}),
    Api("SYNO.API.Auth.Key", {"get": Method(_auth_key_get)}),
    Api("SYNO.Entry.Request", {"request": Method(_entry_request)}),
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
            "set": Method(_share_set, write=True),
            "clone": Method(_share_clone, write=True),
            "delete": Method(_share_delete, write=True),
        },
    ),
    Api(
        "SYNO.Core.Share.Snapshot",
        {
            "create": Method(_share_snapshot_create, write=True),
            "list": Method(_share_snapshot_list),
            "delete": Method(_share_snapshot_delete, write=True),
        },
    ),
    Api(
        "SYNO.Core.Share.Permission",
        {"list": Method(_share_permission_list), "set": Method(_share_permission_set, write=True)},
    ),
    Api(
        "SYNO.Core.FileServ.NFS.SharePrivilege",
        {"load": Method(_nfs_privilege_load), "save": Method(_nfs_privilege_save, write=True)},
    ),
    Api("SYNO.Core.Network.Interface", {"list": Method(_network_interface_list)}),
    Api("SYNO.DSM.Network", {"list": Method(_dsm_network_list), "get": Method(_dsm_network_list)}),
    Api("SYNO.FileStation.Info", {"get": Method(_filestation_info)}),
    Api(
        "SYNO.FileStation.List",
        {
            "list_share": Method(_filestation_list_share),
            "list": Method(_filestation_list),
            "getinfo": Method(_filestation_getinfo),
        },
    ),
    Api("SYNO.FileStation.CreateFolder", {"create": Method(_filestation_create_folder)}),
    Api("SYNO.FileStation.Rename", {"rename": Method(_filestation_rename)}),
    Api("SYNO.FileStation.Upload", {"upload": Method(_filestation_upload)}),
    Api("SYNO.FileStation.Download", {"download": Method(_filestation_download)}),
    Api(
        "SYNO.FileStation.Delete",
        {
            "start": Method(_filestation_delete_start),
            "status": Method(_fs_status("delete")),
            "stop": Method(_fs_stop("delete")),
            "delete": Method(_filestation_delete, min_version=2),
        },
    ),
    Api(
        "SYNO.FileStation.CopyMove",
        {
            "start": Method(_filestation_copymove_start),
            "status": Method(_fs_status("copymove")),
            "stop": Method(_fs_stop("copymove")),
        },
    ),
    Api(
        "SYNO.FileStation.DirSize",
        {
            "start": Method(_filestation_dirsize_start),
            "status": Method(_fs_status("dirsize")),
            "stop": Method(_fs_stop("dirsize")),
        },
    ),
    Api(
        "SYNO.FileStation.MD5",
        {
            "start": Method(_filestation_md5_start),
            "status": Method(_fs_status("md5")),
            "stop": Method(_fs_stop("md5")),
        },
    ),
    Api("SYNO.Storage.CGI.Storage", {"load_info": Method(_storage_load_info)}),
    Api("SYNO.Core.System.Utilization", {"get": Method(_utilization_get)}),
    Api("SYNO.Core.Network", {"get": Method(_network_get)}),
    Api("SYNO.Core.SecurityScan.Status", {"system_get": Method(_security_status)}),
    Api("SYNO.Core.Upgrade.Server", {"check": Method(_upgrade_check)}),
    Api("SYNO.Core.ExternalDevice.Storage.USB", {"list": Method(_external_usb_list)}),
    Api("SYNO.Core.Hardware.FanSpeed", {"get": Method(_fan_speed_get)}),
    Api(
        "SYNO.Core.ISCSI.LUN",
        {
            "list": Method(_lun_list),
            "get": Method(_lun_get),
            "create": Method(_lun_create, write=True),
            "set": Method(_lun_set, write=True),
            "delete": Method(_lun_delete, write=True),
            "clone": Method(_lun_clone, write=True),
            "map_target": Method(_lun_map_target, write=True),
            "unmap_target": Method(_lun_unmap_target, write=True),
            "take_snapshot": Method(_lun_take_snapshot, write=True),
            "list_snapshot": Method(_lun_list_snapshot),
            "get_snapshot": Method(_lun_get_snapshot),
            "delete_snapshot": Method(_lun_delete_snapshot, write=True),
            "clone_snapshot": Method(_lun_clone_snapshot, write=True),
        },
    ),
    Api(
        "SYNO.Core.ISCSI.Target",
        {
            "list": Method(_target_list),
            "get": Method(_target_get),
            "create": Method(_target_create, write=True),
            "set": Method(_target_set, write=True),
            "delete": Method(_target_delete, write=True),
            "map_lun": Method(_target_map_lun, write=True),
            "unmap_lun": Method(_target_unmap_lun, write=True),
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
    if api is None:
        listed = catalogue.CATALOGUE.get(api_name)
        if listed is None or cgi != listed.path:
            raise ApiError(E_NO_API)
        # Listed as DSM lists it, with no method the simulator serves (see FACTS.md,
        # "Catalogue").
        api = Api(api_name, {}, cgis=(listed.path,))
    if cgi not in api.cgis:
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
        # No session at all is 119 like a stale one ("SID not found"; the CSI driver logs in
        # again on 105, 106 and 119: synology-csi pkg/dsm/webapi/dsmwebapi.go sendRequest).
        if session is None:
            raise ApiError(E_INVALID_SESSION)
        if not state.is_admin(session):
            raise ApiError(E_NO_PERMISSION)
        if method.write and state.scenario.require_synotoken:
            token = header_token or params.get("SynoToken")
            if token != session.synotoken:
                raise ApiError(E_INVALID_SESSION)
    if crypto.CIPHER_KEY_NAME in params:
        # Any API's parameters may come encrypted over http, as the login's do; the clear
        # ones beside them stay (api, method, version, _sid).
        try:
            clear = _decrypt_params(state, params[crypto.CIPHER_KEY_NAME])
        except ValueError:
            code = E_AUTH_FAILED if api.name == "SYNO.API.Auth" else E_INVALID_PARAM
            raise ApiError(code) from None
        params = {k: v for k, v in params.items() if k != crypto.CIPHER_KEY_NAME}
        params.update(clear)
    ctx = Ctx(state=state, cgi=cgi, params=params, version=version, session=session)
    ctx.extra.update(cookie_sid=cookie_sid, header_token=header_token)
    data = method.handler(ctx)
    if method.write:
        dataplane.changed(state)  # served before the API answers
    result.set_cookie_sid = ctx.set_cookie_sid
    result.cookies = ctx.cookies
    result.download = ctx.extra.get("download")
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
