"""The simulated DSM (the simulator's guest app) on 127.0.0.1, seen as a DSM by the Web API tests.

Started by :func:`tests.guest.run_guest`, the one helper every test uses to run the guest.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

import requests

from tests.guest import GuestServer

ADMIN_USER = "vdsm"
ADMIN_PASSWORD = "Sup3rSecret-42"


@dataclass
class Sim:
    """A running simulated DSM."""

    server: GuestServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.server.proc

    def state(self) -> dict[str, Any]:
        return self.server.state()

    def create_admin(self, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> None:
        """What the wizard's admin form sends."""
        resp = requests.post(
            f"{self.url}/sim/ui/admin",
            json={
                "device_name": "vdsm-test",
                "nas_account": user,
                "password": password,
                "password_confirm": password,
            },
            timeout=10,
        )
        body = resp.json()
        assert resp.status_code == 200 and body.get("ok"), body

    def admin_sid(self) -> str:
        """A session of the admin: ``SYNO.API.Auth`` login version 6 at entry.cgi."""
        resp = requests.get(
            f"{self.url}/webapi/entry.cgi",
            params={
                "api": "SYNO.API.Auth",
                "version": "6",
                "method": "login",
                "account": ADMIN_USER,
                "passwd": ADMIN_PASSWORD,
            },
            timeout=10,
        )
        body = resp.json()
        assert resp.status_code == 200 and body.get("success"), body
        return str(body["data"]["sid"])
