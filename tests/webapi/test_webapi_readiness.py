"""DsmApiReady and DsmLoginReady against the real simulated DSM."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sim_dsm import ADMIN_PASSWORD, ADMIN_USER, Sim

from vdsmlib.readiness import ReadinessAborted
from vdsmlib.webapi import WebApiError
from vdsmlib.webapi.readiness import DsmApiReady, DsmLoginReady


def test_api_ready_on_a_fresh_dsm(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory(admin=False)
    info = DsmApiReady(sim.url, timeout=10).wait()
    assert "SYNO.Core.FileServ.NFS" in info


def test_login_ready_waits_for_the_account(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory(admin=False)
    timer = threading.Timer(0.5, sim.create_admin)
    timer.start()
    try:
        start = time.monotonic()
        # While the wizard has not created the account, 400 must count as "not yet".
        DsmLoginReady(
            sim.url, ADMIN_USER, ADMIN_PASSWORD, timeout=10, interval=0.1, fatal_codes=frozenset()
        ).wait()
        assert time.monotonic() - start >= 0.4
    finally:
        timer.cancel()
    assert sim.state()["sessions"] == 1  # the readiness login logged out again


def test_wrong_password_fails_fast(sim: Sim) -> None:
    start = time.monotonic()
    with pytest.raises(WebApiError) as exc:
        DsmLoginReady(sim.url, ADMIN_USER, "Wr0ngPassw0rd", timeout=60).wait()
    assert time.monotonic() - start < 5
    assert exc.value.code == 400
    assert "Wr0ngPassw0rd" not in str(exc.value)
    assert "Wr0ngPassw0rd" not in repr(DsmLoginReady(sim.url, ADMIN_USER, "Wr0ngPassw0rd"))


def test_dead_dsm_aborts_the_wait(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory()
    sim.process.terminate()
    sim.process.wait(10)

    def alive() -> str | None:
        code = sim.process.poll()
        return None if code is None else f"simulator exited with code {code}"

    with pytest.raises(ReadinessAborted, match="simulator exited with code"):
        DsmLoginReady(sim.url, ADMIN_USER, ADMIN_PASSWORD, timeout=60).wait(alive=alive)
