"""A small synchronous client of DSM's Web API (``/webapi/*.cgi``), built on ``requests``.

:class:`DsmClient` talks to one DSM without a session (``SYNO.API.Info``) and logs in;
:class:`DsmSession` is one login: it sends the session id (cookie ``id`` and ``_sid``) and,
when DSM gave one, the SynoToken (header ``X-SYNO-TOKEN``, which DSM 7.3 requires for writes)
with every call, logs in again once when DSM says the session is gone, and offers typed
helpers for the APIs this project needs.

Example::

    with DsmClient("http://127.0.0.1:5000") as dsm, dsm.login("vdsm", "Sup3rSecret") as s:
        s.nfs_set(enable_nfs=True)
        print(s.services(["nfs-server"]))
        print(s.request("SYNO.Core.System", "info", version=1)["firmware_ver"])
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import requests

from vdsmlib.resource import Closeable
from vdsmlib.webapi.errors import WebApiError

__all__ = [
    "LUN_TYPES",
    "RELOGIN_CODES",
    "DsmClient",
    "DsmSession",
    "Json",
    "VersionSpec",
    "WebApiError",
    "choose_version",
    "encode_params",
]

log = logging.getLogger(__name__)

#: A version wish: exact (``2``), a range to pick the highest supported from (``(1, 3)``),
#: or None for the API's ``maxVersion``.
VersionSpec = int | tuple[int, int] | None

#: Every LUN type DSM knows, in the ``types`` list Synology's clients send with
#: ``SYNO.Core.ISCSI.LUN`` list (SynologyOpenSource/synology-csi pkg/dsm/webapi/iscsi.go).
LUN_TYPES = (
    "BLOCK",
    "FILE",
    "THIN",
    "ADV",
    "SINK",
    "CINDER",
    "CINDER_BLUN",
    "CINDER_BLUN_THICK",
    "BLUN",
    "BLUN_THICK",
    "BLUN_SINK",
    "BLUN_THICK_SINK",
)

#: Error codes after which a session logs in again once and repeats the call.
RELOGIN_CODES = frozenset({106, 107, 119})

# SYNO.API.Auth: login needs version 3+; 6+ can hand out a SynoToken. 7 is the highest version
# known clients use, so a later DSM is not asked for a login format nobody has seen.
_LOGIN_MIN_VERSION = 3
_TOKEN_MIN_VERSION = 6
_LOGIN_MAX_KNOWN = 7


class Json:
    """Marks a parameter value to be sent JSON-encoded even where strings are sent raw.

    >>> encode_params({"volume_path": Json("/volume1")}, json_format=False)
    {'volume_path': '"/volume1"'}
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Json({self.value!r})"


def _encode_value(value: Any, json_format: bool) -> str:
    if isinstance(value, Json):
        return json.dumps(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value) if json_format else value
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    raise TypeError(f"cannot send a {type(value).__name__} as a DSM Web API parameter")


def encode_params(params: Mapping[str, Any], *, json_format: bool) -> dict[str, str]:
    """Encode method parameters the way DSM reads them.

    Booleans become ``true``/``false``, lists and dicts JSON strings
    (``additional=["active_status"]``); strings are JSON-quoted for APIs whose
    ``SYNO.API.Info`` entry says ``requestFormat: JSON`` (as DSM's own UI sends them) and raw
    otherwise; None values are left out.

    >>> encode_params({"additional": ["status"], "enable_nfs": True, "limit": -1},
    ...               json_format=False)
    {'additional': '["status"]', 'enable_nfs': 'true', 'limit': '-1'}
    """
    return {
        name: _encode_value(value, json_format)
        for name, value in params.items()
        if value is not None
    }


def choose_version(api: str, entry: Mapping[str, Any], wanted: VersionSpec = None) -> int:
    """The version to call ``api`` with, given its ``SYNO.API.Info`` entry.

    None picks the API's ``maxVersion``; a ``(low, high)`` range the highest version in both
    the range and the server's; an int that version, if the server has it. Raises
    :class:`WebApiError` (code 104) when nothing fits.
    """
    try:
        low, high = int(entry["minVersion"]), int(entry["maxVersion"])
    except (KeyError, TypeError, ValueError) as err:
        raise WebApiError(
            f"SYNO.API.Info entry of {api} has no usable version range: {dict(entry)}",
            api=api,
        ) from err
    if wanted is None:
        return high
    if isinstance(wanted, int):
        if low <= wanted <= high:
            return wanted
        asked = f"version {wanted}"
    else:
        want_low, want_high = wanted
        if want_low > want_high:
            raise ValueError(f"version range {wanted} is empty")
        best = min(high, want_high)
        if best >= max(low, want_low):
            return best
        asked = f"versions {want_low}-{want_high}"
    raise WebApiError(
        f"{api}: this DSM offers versions {low}-{high}, the client needs {asked}; "
        "use a DSM version this project supports",
        code=104,
        api=api,
    )


class DsmClient(Closeable):
    """A DSM at ``base_url`` (``http://host:5000``); unauthenticated calls and :meth:`login`.

    ``session`` lets callers share a ``requests.Session`` (it is then not closed here).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._owns_http = session is None
        self.http = session if session is not None else requests.Session()
        self._info: dict[str, dict[str, Any]] | None = None
        self._closed = False

    # -- plumbing ------------------------------------------------------------------------------

    def url(self, cgi: str) -> str:
        """The URL of a CGI path from ``SYNO.API.Info`` (``entry.cgi``)."""
        return f"{self.base_url}/webapi/{cgi.lstrip('/')}"

    def call(
        self,
        cgi: str,
        params: Mapping[str, str],
        *,
        api: str,
        method: str,
        http_method: str = "POST",
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request and return DSM's envelope (``success`` true or false).

        Transport failures, HTTP statuses other than 200 and answers that are not a DSM
        envelope raise :class:`WebApiError`. Parameters go into the POST body (or the query
        string for GET) and never into messages.
        """
        if self._closed:
            raise WebApiError(f"DsmClient for {self.base_url} is closed", api=api, method=method)
        url = self.url(cgi)
        log.debug("%s %s %s.%s v%s", http_method, url, api, method, params.get("version"))
        try:
            resp = self.http.request(
                http_method,
                url,
                params=params if http_method == "GET" else None,
                data=params if http_method != "GET" else None,
                headers=dict(headers or {}),
                cookies=dict(cookies or {}),
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            raise WebApiError(
                f"cannot reach DSM at {url} for {api} {method}: {err}; "
                "is the container running and the port published?",
                api=api,
                method=method,
                url=url,
            ) from err
        with resp:
            if resp.status_code != 200:
                raise WebApiError(
                    f"{api} {method} at {url}: HTTP {resp.status_code} {resp.reason}",
                    api=api,
                    method=method,
                    status=resp.status_code,
                    url=url,
                )
            try:
                envelope = resp.json()
            except ValueError as err:
                snippet = " ".join(resp.text[:120].split())
                raise WebApiError(
                    f"{api} {method} at {url}: the answer is not JSON "
                    f"(DSM still starting?): {snippet!r}",
                    api=api,
                    method=method,
                    status=resp.status_code,
                    url=url,
                ) from err
        if not isinstance(envelope, dict) or not isinstance(envelope.get("success"), bool):
            raise WebApiError(
                f"{api} {method} at {url}: not a DSM answer: {str(envelope)[:120]!r}",
                api=api,
                method=method,
                url=url,
            )
        return envelope

    @staticmethod
    def error_code(envelope: Mapping[str, Any]) -> int:
        """The error code of a failed envelope (100, unknown, if DSM gave none)."""
        error = envelope.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return int(code) if isinstance(code, int) else 100

    # -- discovery -----------------------------------------------------------------------------

    def api_info(self, query: str = "ALL") -> dict[str, dict[str, Any]]:
        """``SYNO.API.Info`` query: API name -> ``{path, minVersion, maxVersion, ...}``.

        ``query`` is ``ALL`` (any case), a comma list of API names, or prefixes ending in a dot
        (``SYNO.Core.ISCSI.``). The answer to ``ALL`` is cached for :meth:`api_entry`.
        """
        api, method = "SYNO.API.Info", "query"
        params = {"api": api, "version": "1", "method": method, "query": query}
        envelope = self.call("query.cgi", params, api=api, method=method, http_method="GET")
        if not envelope["success"]:
            raise WebApiError.from_code(
                self.error_code(envelope),
                api=api,
                method=method,
                version=1,
                url=self.url("query.cgi"),
            )
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise WebApiError(
                f"SYNO.API.Info at {self.url('query.cgi')} answered without data",
                api=api,
                method=method,
            )
        if query.upper() == "ALL":
            self._info = data
        return data

    def api_entry(self, api: str) -> dict[str, Any]:
        """The ``SYNO.API.Info`` entry of ``api``; raises code 102 if DSM does not list it."""
        if self._info is None or api not in self._info:
            self.api_info()
        assert self._info is not None
        entry = self._info.get(api)
        if entry is None:
            raise WebApiError(
                f"{self.base_url} does not list {api} in SYNO.API.Info: 102: no such API; "
                "is its package running?",
                code=102,
                api=api,
            )
        return entry

    # -- login ---------------------------------------------------------------------------------

    def login(
        self,
        account: str,
        password: str,
        *,
        version: int | None = None,
        syno_token: bool = True,
    ) -> DsmSession:
        """Log in and return the session (a context manager that logs out).

        Without ``version``: ``SYNO.API.Auth`` v6+ (up to 7) with ``enable_syno_token=yes``
        when DSM offers it and ``syno_token`` is true, else v3 with ``format=sid``. A wrong
        password raises :class:`WebApiError` with code 400.
        """
        session = DsmSession(self, account, password, version=version, syno_token=syno_token)
        session.login()
        return session

    def _login_version(self, entry: Mapping[str, Any], syno_token: bool) -> int:
        high = int(entry.get("maxVersion", 0))
        if syno_token and high >= _TOKEN_MIN_VERSION:
            return min(high, _LOGIN_MAX_KNOWN)
        return choose_version("SYNO.API.Auth", entry, _LOGIN_MIN_VERSION)

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP session if this client created it; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_http:
            self.http.close()

    def __repr__(self) -> str:
        return f"DsmClient({self.base_url!r})"


class DsmSession(Closeable):
    """One login to DSM; use :meth:`DsmClient.login` to get one.

    ``sid`` is sent as cookie ``id`` and parameter ``_sid``; ``synotoken`` (if DSM gave one) as
    header ``X-SYNO-TOKEN``. On 106/107/119 the session logs in again once and repeats the
    call, as synology-csi does.
    """

    def __init__(
        self,
        client: DsmClient,
        account: str,
        password: str,
        *,
        version: int | None = None,
        syno_token: bool = True,
    ) -> None:
        self.client = client
        self.account = account
        self._password = password
        self._wanted_version = version
        self._syno_token = syno_token
        self.auth_version: int | None = None
        self.sid: str | None = None
        self.synotoken: str | None = None
        self.login_data: dict[str, Any] = {}

    # -- login / logout ------------------------------------------------------------------------

    def login(self) -> None:
        """Log in (again), replacing ``sid`` and ``synotoken``."""
        api, method = "SYNO.API.Auth", "login"
        entry = self.client.api_entry(api)
        version = self._wanted_version or self.client._login_version(entry, self._syno_token)
        params: dict[str, str] = {
            "api": api,
            "version": str(version),
            "method": method,
            "account": self.account,
            "passwd": self._password,
        }
        if version >= _TOKEN_MIN_VERSION and self._syno_token:
            params["enable_syno_token"] = "yes"
            params["format"] = "cookie"
        else:
            params["format"] = "sid"
        cgi = str(entry.get("path", "entry.cgi"))
        envelope = self.client.call(cgi, params, api=api, method=method)
        if not envelope["success"]:
            raise WebApiError.from_code(
                self.client.error_code(envelope),
                api=api,
                method=method,
                version=version,
                url=self.client.url(cgi),
                context=f" for account {self.account!r}",
            )
        data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
        assert isinstance(data, dict)
        sid = data.get("sid")
        if not isinstance(sid, str) or not sid:
            raise WebApiError(
                f"login of {self.account!r} at {self.client.url(cgi)} succeeded without a sid",
                api=api,
                method=method,
                version=version,
            )
        token = data.get("synotoken")
        self.sid = sid
        self.synotoken = token if isinstance(token, str) and token else None
        self.auth_version = version
        self.login_data = {k: v for k, v in data.items() if k not in ("sid", "synotoken")}
        log.info(
            "logged in to %s as %r (SYNO.API.Auth v%d, %s)",
            self.client.base_url,
            self.account,
            version,
            "with SynoToken" if self.synotoken else "no SynoToken",
        )

    def logout(self) -> None:
        """Log out; idempotent and quiet (a DSM that is gone has no session to end)."""
        sid, self.sid, self.synotoken = self.sid, None, None
        if sid is None or self.client._closed:
            return
        api, method = "SYNO.API.Auth", "logout"
        try:
            entry = self.client.api_entry(api)
            # synology-csi logs out with v1; a DSM without v1 gets its highest version.
            version = 1 if int(entry.get("minVersion", 1)) <= 1 else choose_version(api, entry)
            params = {"api": api, "version": str(version), "method": method, "_sid": sid}
            self.client.call(
                str(entry.get("path", "entry.cgi")),
                params,
                api=api,
                method=method,
                cookies={"id": sid},
            )
        except WebApiError as err:
            log.debug("logout from %s failed (ignored): %s", self.client.base_url, err)

    close = logout

    def __repr__(self) -> str:  # no sid, no password
        state = "logged in" if self.sid else "logged out"
        return f"DsmSession({self.client.base_url!r}, {self.account!r}, {state})"

    # -- calls ---------------------------------------------------------------------------------

    def request(
        self, api: str, method: str, version: VersionSpec = None, **params: Any
    ) -> dict[str, Any]:
        """Call ``api``/``method`` and return its ``data`` (``{}`` when DSM sends none).

        ``version`` as in :func:`choose_version`; ``params`` are encoded by
        :func:`encode_params`. Raises :class:`WebApiError` with DSM's code on failure.
        """
        entry = self.client.api_entry(api)
        chosen = choose_version(api, entry, version)
        cgi = str(entry.get("path", "entry.cgi"))
        encoded = encode_params(params, json_format=entry.get("requestFormat") == "JSON")
        for attempt in (1, 2):
            if self.sid is None:
                raise WebApiError(
                    f"{api} {method}: the session of {self.account!r} is logged out",
                    api=api,
                    method=method,
                )
            call = {
                **encoded,
                "api": api,
                "version": str(chosen),
                "method": method,
                "_sid": self.sid,
            }
            headers = {"X-SYNO-TOKEN": self.synotoken} if self.synotoken else {}
            envelope = self.client.call(
                cgi, call, api=api, method=method, headers=headers, cookies={"id": self.sid}
            )
            if envelope["success"]:
                data = envelope.get("data")
                return data if isinstance(data, dict) else {}
            code = self.client.error_code(envelope)
            if attempt == 1 and code in RELOGIN_CODES:
                log.info("%s %s: error %d, logging in again once", api, method, code)
                self.login()
                continue
            raise WebApiError.from_code(
                code,
                api=api,
                method=method,
                version=chosen,
                url=self.client.url(cgi),
                context=" after logging in again" if attempt == 2 else "",
            )
        raise AssertionError("unreachable")

    # -- file services -------------------------------------------------------------------------

    def nfs_get(self) -> dict[str, Any]:
        """``SYNO.Core.FileServ.NFS`` get: ``{enable_nfs, enable_nfs_v4, ...}``."""
        return self.request("SYNO.Core.FileServ.NFS", "get", (1, 3))

    def nfs_set(self, **changes: Any) -> dict[str, Any]:
        """Change NFS settings: read them, apply ``changes``, write the settable fields back.

        Returns the settings as sent. ``support_*`` fields are read-only and never sent.
        """
        current = self.nfs_get()
        unknown = sorted(set(changes) - set(current))
        if unknown:
            raise WebApiError(
                f"SYNO.Core.FileServ.NFS has no settings {unknown}; known: {sorted(current)}",
                api="SYNO.Core.FileServ.NFS",
                method="set",
            )
        settings = {k: v for k, v in current.items() if not k.startswith("support_")}
        settings.update(changes)
        self.request("SYNO.Core.FileServ.NFS", "set", (1, 3), **settings)
        return settings

    def smb_get(self) -> dict[str, Any]:
        """``SYNO.Core.FileServ.SMB`` get: ``{enable_samba, workgroup, ...}``."""
        return self.request("SYNO.Core.FileServ.SMB", "get", (1, 3))

    def smb_set(self, **changes: Any) -> dict[str, Any]:
        """Change SMB settings: read the whole object, apply ``changes``, send it all back
        (DSM 7.3 refuses partial objects with 2001). Returns the object as sent."""
        current = self.smb_get()
        unknown = sorted(set(changes) - set(current))
        if unknown:
            raise WebApiError(
                f"SYNO.Core.FileServ.SMB has no settings {unknown}; known: {sorted(current)}",
                api="SYNO.Core.FileServ.SMB",
                method="set",
            )
        settings = {**current, **changes}
        self.request("SYNO.Core.FileServ.SMB", "set", (1, 3), **settings)
        return settings

    def nfs_rules(self, share: str) -> list[dict[str, Any]]:
        """``SYNO.Core.FileServ.NFS.SharePrivilege`` load: the NFS rules of ``share``."""
        data = self.request("SYNO.Core.FileServ.NFS.SharePrivilege", "load", 1, share_name=share)
        return [r for r in data.get("rule", []) if isinstance(r, dict)]

    def nfs_rules_save(self, share: str, rules: list[dict[str, Any]]) -> None:
        """Replace the NFS rules of ``share`` (a share without rules is not exported)."""
        self.request(
            "SYNO.Core.FileServ.NFS.SharePrivilege", "save", 1, share_name=share, rule=rules
        )

    def services(self, ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """``SYNO.Core.Service`` get with ``active_status``: service_id -> entry.

        ``ids`` (``nfs-server``, ``pkg-iscsi``, ``pkg-synosamba-smbd``) limits the result;
        ids DSM does not know are absent from it.
        """
        data = self.request("SYNO.Core.Service", "get", (2, 3), additional=["active_status"])
        rows = data.get("service", [])
        found = {
            str(row["service_id"]): row
            for row in rows
            if isinstance(row, dict) and "service_id" in row
        }
        if ids is None:
            return found
        wanted = set(ids)
        return {sid: row for sid, row in found.items() if sid in wanted}

    # -- storage and system --------------------------------------------------------------------

    def volumes(self) -> list[dict[str, Any]]:
        """``SYNO.Core.Storage.Volume`` list: every volume (``volume_path``, ``fs_type``, ...)."""
        data = self.request(
            "SYNO.Core.Storage.Volume", "list", 1, offset=0, limit=-1, location="all"
        )
        return list(data.get("volumes", []))

    def system_info(self, info_type: str | None = None) -> dict[str, Any]:
        """``SYNO.Core.System`` info (``info_type="network"`` adds the hostname)."""
        return self.request("SYNO.Core.System", "info", 1, type=info_type)

    def dsm_info(self) -> dict[str, Any]:
        """``SYNO.DSM.Info`` getinfo: ``{model, version, version_string, ...}``."""
        return self.request("SYNO.DSM.Info", "getinfo", 2)

    # -- shares --------------------------------------------------------------------------------

    def share_list(self) -> list[dict[str, Any]]:
        """``SYNO.Core.Share`` list: every shared folder (``name``, ``vol_path``, ...)."""
        data = self.request("SYNO.Core.Share", "list", 1, offset=0, limit=-1)
        return list(data.get("shares", []))

    def share_create(
        self, name: str, vol_path: str = "/volume1", *, desc: str = "", **options: Any
    ) -> None:
        """Create a shared folder on ``vol_path``; ``options`` go into ``shareinfo``."""
        info = {"name": name, "vol_path": vol_path, "desc": desc, **options}
        self.request("SYNO.Core.Share", "create", 1, name=name, shareinfo=info)

    def share_delete(self, name: str) -> None:
        """Delete a shared folder and its data."""
        self.request("SYNO.Core.Share", "delete", 1, name=[name])

    # -- iSCSI ---------------------------------------------------------------------------------

    def lun_list(self) -> list[dict[str, Any]]:
        """``SYNO.Core.ISCSI.LUN`` list of every LUN type (``name``, ``uuid``, ``size``, ...).

        DSM lists only the LUN types a client names in ``types``, so every type is named, as
        Synology's own clients do (SynologyOpenSource/synology-csi pkg/dsm/webapi/iscsi.go,
        ``LunList``).
        """
        data = self.request(
            "SYNO.Core.ISCSI.LUN",
            "list",
            1,
            types=list(LUN_TYPES),
            additional=["allocated_size", "status"],
        )
        return list(data.get("luns", []))

    def lun_create(
        self,
        name: str,
        size_bytes: int,
        *,
        location: str = "/volume1",
        lun_type: str = "BLUN",
        description: str = "",
    ) -> str:
        """Create a LUN (``BLUN`` is thin provisioned on Btrfs) and return its uuid."""
        data = self.request(
            "SYNO.Core.ISCSI.LUN",
            "create",
            1,
            name=name,
            size=size_bytes,
            type=lun_type,
            location=location,
            description=description or None,
        )
        uuid = data.get("uuid")
        if not isinstance(uuid, str):
            raise WebApiError(
                f"SYNO.Core.ISCSI.LUN create of {name!r} answered without a uuid: {data}",
                api="SYNO.Core.ISCSI.LUN",
                method="create",
            )
        return uuid

    def lun_delete(self, uuid: str) -> None:
        """Delete a LUN by uuid."""
        self.request("SYNO.Core.ISCSI.LUN", "delete", 1, uuid=uuid)

    def target_list(self) -> list[dict[str, Any]]:
        """``SYNO.Core.ISCSI.Target`` list (``target_id``, ``name``, ``iqn``, ...)."""
        data = self.request(
            "SYNO.Core.ISCSI.Target", "list", 1, additional=["mapped_lun", "status"]
        )
        return list(data.get("targets", []))

    def target_create(
        self, name: str, iqn: str | None = None, *, max_sessions: int = 0, auth_type: int = 0
    ) -> int:
        """Create a target (DSM derives the IQN when none is given); return its id."""
        data = self.request(
            "SYNO.Core.ISCSI.Target",
            "create",
            1,
            name=name,
            iqn=iqn,
            max_sessions=max_sessions,
            auth_type=auth_type,
        )
        target_id = data.get("target_id")
        try:
            return int(str(target_id))
        except ValueError as err:
            raise WebApiError(
                f"SYNO.Core.ISCSI.Target create of {name!r} answered without a target_id: {data}",
                api="SYNO.Core.ISCSI.Target",
                method="create",
            ) from err

    def target_delete(self, target_id: int) -> None:
        """Delete a target by id."""
        self.request("SYNO.Core.ISCSI.Target", "delete", 1, target_id=str(target_id))

    def map_target(self, lun_uuid: str, target_ids: Iterable[int]) -> None:
        """Map a LUN to targets."""
        self.request(
            "SYNO.Core.ISCSI.LUN",
            "map_target",
            1,
            uuid=lun_uuid,
            target_ids=[int(t) for t in target_ids],
        )
