"""DSM's readiness: wait objects on the one wait loop (:mod:`vdsmlib.readiness`).

``DsmApiReady`` needs ``SYNO.API.Info`` to answer with ``SYNO.API.Auth`` listed (the "please
wait" page virtual-dsm serves with HTTP 200 is not ready); ``DsmLoginReady`` needs a login to
succeed, and ends the wait at once on a login error that waiting will not cure
(:data:`FATAL_LOGIN_CODES`, DSM's facts). The build, the smoke stage and
:class:`vdsmlib.testing.DsmContainer` all wait through these.

    info = await DsmApiReady(url, timeout=600).wait_async(describe=log_tail, progress=True)
    DsmLoginReady(url, "vdsm", password).with_timeout(60).wait()
"""

from __future__ import annotations

import asyncio
from typing import Any

import requests

from vdsmlib.dsm import errors as dsm_errors
from vdsmlib.dsm import webapi as dsm_webapi
from vdsmlib.readiness import NotReady, WaitStrategy, probe_timeout
from vdsmlib.webapi.client import DsmClient
from vdsmlib.webapi.errors import WebApiError

__all__ = ["FATAL_LOGIN_CODES", "DsmApiReady", "DsmLoginReady"]


class DsmApiReady(WaitStrategy[dict[str, Any]]):
    """Ready when DSM's ``SYNO.API.Info`` answers with ``SYNO.API.Auth`` listed.

    Port 5000 answers long before DSM does (virtual-dsm's "please wait" page, HTTP 200), so
    only the API's own answer counts. While the guest boots behind NAT, connections are
    refused, reset, or a SYN goes unanswered until the request times out: all "not yet"
    (the client raises them as ``WebApiError``). Returns the ``SYNO.API.Info`` data.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 600.0,
        interval: float = 0.5,
        request_timeout: float = 10.0,
    ) -> None:
        super().__init__(timeout=timeout, interval=interval)
        self.base_url = base_url
        self.request_timeout = request_timeout
        self.retryable = (WebApiError, OSError, requests.RequestException)

    def check(self, budget: float) -> dict[str, Any]:
        """One probe, blocking (:meth:`check_async` runs it in a thread)."""
        with DsmClient(self.base_url, timeout=probe_timeout(self.request_timeout, budget)) as c:
            info = c.api_info("ALL")
        if dsm_webapi.READY_API not in info:
            raise NotReady(
                f"SYNO.API.Info at {self.base_url} answers but lists no {dsm_webapi.READY_API} "
                f"yet ({len(info)} APIs)"
            )
        return info

    async def check_async(self, budget: float) -> dict[str, Any]:
        return await asyncio.to_thread(self.check, budget)

    def description(self) -> str:
        return f"DSM Web API at {self.base_url}"


#: Login errors that will not go away by waiting (wrong password, disabled account, 2FA ...).
FATAL_LOGIN_CODES = dsm_errors.AUTH_FATAL


class _LoginNotYet(NotReady):
    """A login failure that may still go away (DSM booting, account being created)."""


class DsmLoginReady(WaitStrategy[None]):
    """Ready when ``user`` can log in to DSM (and out again).

    Login errors in ``fatal_codes`` (by default wrong password, disabled account, 2FA, ...)
    end the wait at once instead of timing out; pass ``fatal_codes=frozenset()`` while the
    account may still be being created.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        timeout: float = 600.0,
        interval: float = 0.5,
        request_timeout: float = 10.0,
        fatal_codes: frozenset[int] = FATAL_LOGIN_CODES,
    ) -> None:
        super().__init__(timeout=timeout, interval=interval)
        self.base_url = base_url
        self.user = user
        self._password = password
        self.request_timeout = request_timeout
        self.fatal_codes = fatal_codes
        self.retryable = (OSError, requests.RequestException)

    def check(self, budget: float) -> None:
        """One login and logout, blocking (:meth:`check_async` runs it in a thread)."""
        try:
            with (
                DsmClient(
                    self.base_url, timeout=probe_timeout(self.request_timeout, budget)
                ) as client,
                client.login(self.user, self._password),
            ):
                return None
        except WebApiError as err:
            if err.code is not None and err.code in self.fatal_codes:
                raise
            raise _LoginNotYet(str(err)) from err

    async def check_async(self, budget: float) -> None:
        await asyncio.to_thread(self.check, budget)

    def description(self) -> str:
        return f"DSM login of {self.user!r} at {self.base_url}"

    def __repr__(self) -> str:  # never show the password
        return f"DsmLoginReady({self.base_url!r}, {self.user!r}, timeout={self.timeout:g})"
