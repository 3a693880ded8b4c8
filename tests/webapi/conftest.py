"""Fixtures: a real simulated DSM on 127.0.0.1.

``sim_factory(**env)`` starts one with scenario knobs (``SIM_REQUIRE_SYNOTOKEN="1"``), creates
the administrator the way the wizard's admin form does (``POST /sim/ui/admin``), and stops it
when the test ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
from sim_dsm import Sim

from tests.guest import run_guest


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Sim]]:
    with contextlib.ExitStack() as stack:

        def start(*, admin: bool = True, **env: str) -> Sim:
            sim = Sim(stack.enter_context(run_guest(env)))
            if admin:
                sim.create_admin()
            return sim

        yield start


@pytest.fixture
def sim(sim_factory: Callable[..., Sim]) -> Sim:
    """A configured simulated DSM (admin created, DSM 7.2.2 behaviour)."""
    return sim_factory()
