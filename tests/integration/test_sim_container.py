"""The simulator container itself, driven by an automation written only from the facts files.

tests/sim/test_facts_automation.py runs that automation against the simulated DSM on the host;
here it configures a fresh simulator *container* (QEMU guest, please-wait page, port forward),
which is what "runs unchanged against the simulator" means for automation written for DSM.
"""

from __future__ import annotations

import asyncio
import time

import docker
import pytest

from tests.sim.conftest import run_browser
from tests.sim.test_facts_automation import automate, verify_nfs_by_webapi
from vdsmlib.docker import labels as L
from vdsmlib.docker.container import VmContainer
from vdsmlib.webapi.readiness import DsmApiReady

pytestmark = [pytest.mark.docker, pytest.mark.browser]


def test_facts_automation_configures_a_fresh_simulator_container(
    client: docker.DockerClient, sim_image: str
) -> None:
    with VmContainer.start(
        client,
        sim_image,
        env={"KVM": "N", "SIM_SCREEN_SEED": "3"},
        labels=L.owner_labels("sim-run", f"test-facts-{int(time.time())}"),
    ) as vm:
        url = vm.url(5000)
        asyncio.run(DsmApiReady(url).with_timeout(90).wait_async(alive=vm.died))
        met: list[list[str]] = []

        async def body(browser: object) -> None:
            met.append(await automate(browser, url))

        run_browser(body)
        assert met and met[0], "no post-wizard screen was met"
        verify_nfs_by_webapi(url)
