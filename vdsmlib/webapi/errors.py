"""DSM Web API errors and what DSM's error codes mean.

DSM answers failures with ``{"success": false, "error": {"code": N}}``; the meaning of ``N``
depends on the API (400 is "wrong password" for ``SYNO.API.Auth`` and "no such share" for
``SYNO.Core.Share``), so :func:`error_meaning` looks up the API's table before the common one.
"""

from __future__ import annotations

from vdsmlib.errors import VdsmError

__all__ = ["COMMON_ERRORS", "WebApiError", "error_hint", "error_meaning"]

#: Codes every API may return.
COMMON_ERRORS: dict[int, str] = {
    100: "unknown error",
    101: "bad or missing API, method or version parameter",
    102: "no such API",
    103: "no such method",
    104: "version not supported",
    105: "no permission",
    106: "session timeout",
    107: "session interrupted by a duplicate login",
    114: "lost parameters",
    117: "needs manager rights",
    119: "invalid session",
    120: "invalid parameter",
}

_AUTH_ERRORS: dict[int, str] = {
    400: "no such account or wrong password",
    401: "disabled account",
    402: "permission denied",
    403: "2-factor authentication code required",
    404: "2-factor authentication failed",
    406: "2-factor authentication is enforced",
    407: "blocked IP address",
    408: "password expired and cannot be changed",
    409: "password expired",
    410: "password must be changed",
    411: "account locked",
}

_SHARE_ERRORS: dict[int, str] = {
    402: "no such share",
    403: "invalid input",
    3301: "share already exists",
    3309: "maximum number of shares reached",
}

_SMB_ERRORS: dict[int, str] = {
    2001: "settings refused (DSM 7.3 wants the whole settings object back)",
}

_ISCSI_ERRORS: dict[int, str] = {
    18990002: "out of space on the volume",
    18990531: "no such LUN",
    18990538: "duplicated LUN name",
    18990710: "bad target id",
    18990744: "duplicated target name",
}

_BY_API: dict[str, dict[int, str]] = {
    "SYNO.API.Auth": _AUTH_ERRORS,
    "SYNO.Core.Share": _SHARE_ERRORS,
    "SYNO.Core.FileServ.SMB": _SMB_ERRORS,
    "SYNO.Core.ISCSI.LUN": _ISCSI_ERRORS,
    "SYNO.Core.ISCSI.Target": _ISCSI_ERRORS,
}

_HINTS: dict[int, str] = {
    102: "the API is not listed by SYNO.API.Info: is its package running?",
    104: "the DSM version does not offer this API version",
    105: "the account needs to be in the administrators group",
    106: "log in again",
    107: "log in again",
    119: "log in again (DSM 7.3 also wants the X-SYNO-TOKEN header on writes)",
}

_AUTH_HINTS: dict[int, str] = {
    400: "check the admin user name and password in params",
    402: "the account needs to be in the administrators group",
    403: "disable 2-factor authentication for this account",
    406: "disable enforced 2-factor authentication",
    407: "wait for the IP block to expire or clear it in DSM",
}


def error_meaning(code: int, api: str | None = None) -> str:
    """DSM's meaning of ``code`` for ``api``, e.g. ``"no such account or wrong password"``."""
    if api:
        table = _BY_API.get(api)
        if table and code in table:
            return table[code]
    return COMMON_ERRORS.get(code, "unknown error code")


def error_hint(code: int, api: str | None = None) -> str | None:
    """What to do about ``code``, when there is something useful to say."""
    if api == "SYNO.API.Auth" and code in _AUTH_HINTS:
        return _AUTH_HINTS[code]
    if api in _BY_API and code in _BY_API[api]:
        return None
    return _HINTS.get(code)


class WebApiError(VdsmError):
    """A DSM Web API call failed.

    ``code`` is DSM's error code (None for HTTP or transport failures, then ``status`` holds
    the HTTP status if there was one), with ``api``, ``method``, ``version`` and ``url`` of the
    call. Messages never contain passwords or session ids.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        api: str | None = None,
        method: str | None = None,
        version: int | None = None,
        status: int | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.api = api
        self.method = method
        self.version = version
        self.status = status
        self.url = url

    @property
    def meaning(self) -> str | None:
        """DSM's meaning of :attr:`code`, or None without a code."""
        return None if self.code is None else error_meaning(self.code, self.api)

    @classmethod
    def from_code(
        cls,
        code: int,
        *,
        api: str,
        method: str,
        version: int | None,
        url: str,
        context: str = "",
    ) -> WebApiError:
        """The error for a ``{"success": false, "error": {"code": code}}`` answer."""
        call = f"{api} {method}" + (f" v{version}" if version is not None else "")
        text = f"{call} at {url} failed{context}: {code}: {error_meaning(code, api)}"
        hint = error_hint(code, api)
        if hint:
            text += f"; {hint}"
        return cls(text, code=code, api=api, method=method, version=version, url=url)
