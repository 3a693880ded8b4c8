"""Fixtures: a real simulated DSM on 127.0.0.1.

``sim_factory(**env)`` starts one with scenario knobs (``SIM_REQUIRE_SYNOTOKEN="1"``), creates
the administrator the way the wizard's admin form does (``POST /sim/ui/admin``), and stops it
when the test ends.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from sim_dsm import Sim, start_sim


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Sim]]:
    started: list[Sim] = []

    def start(*, admin: bool = True, **env: str) -> Sim:
        sim = start_sim(env)
        started.append(sim)
        if admin:
            sim.create_admin()
        return sim

    yield start
    for sim in started:
        sim.process.terminate()
        try:
            sim.process.wait(10)
        except subprocess.TimeoutExpired:
            sim.process.kill()
            sim.process.wait(5)


@pytest.fixture
def sim(sim_factory: Callable[..., Sim]) -> Sim:
    """A configured simulated DSM (admin created, DSM 7.2.2 behaviour)."""
    return sim_factory()
