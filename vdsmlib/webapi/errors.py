"""DSM Web API errors and what DSM's error codes mean.

DSM answers failures with ``{"success": false, "error": {"code": N}}``; the meaning of ``N``
depends on the API (400 is "wrong password" for ``SYNO.API.Auth`` and "no such share" for
``SYNO.Core.Share``), so :func:`error_meaning` looks up the API's table before the common one.
"""

from __future__ import annotations

from vdsmlib.dsm import errors as dsm_errors
from vdsmlib.errors import VdsmError

__all__ = ["COMMON_ERRORS", "WebApiError", "error_hint", "error_meaning"]

#: Codes every API may return (DSM's facts: :mod:`vdsmlib.dsm.errors`).
COMMON_ERRORS = dsm_errors.COMMON_ERRORS

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
    return dsm_errors.meaning(code, api)


def error_hint(code: int, api: str | None = None) -> str | None:
    """What to do about ``code``, when there is something useful to say."""
    if api == "SYNO.API.Auth" and code in _AUTH_HINTS:
        return _AUTH_HINTS[code]
    if api in dsm_errors.BY_API and code in dsm_errors.BY_API[api]:
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
