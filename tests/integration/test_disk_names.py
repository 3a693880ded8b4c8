"""``base.disk_base`` is checked against the disks the install really made.

virtual-dsm names the disks ``DSM_VirtualDSM.*`` when the PAT is mounted at /boot.pat and after
the PAT's file name with ``URL`` (vdsm/virtual-dsm v7.41 src/install.sh); params that expect
another name fail the boot stage with one line saying what to set, before any checkpoint.
"""

from __future__ import annotations

import asyncio

import docker
import pytest

from tests.integration.conftest import Builds
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images
from vdsmlib.params import load_params
from vdsmlib.pipeline import StageError

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]


def test_wrong_disk_base_fails_boot_before_any_checkpoint(
    builds: Builds, client: docker.DockerClient
) -> None:
    made = load_params("sim").base.disk_base
    build = builds.start(
        overrides={"base": {"disk_base": "DSM_VirtualDSM_WRONG"}}, executor="inline"
    )
    with pytest.raises(StageError) as exc:
        asyncio.run(build.run())
    assert exc.value.stage == "boot"
    message = str(exc.value.__cause__)
    assert "\n" not in message
    assert f"{made}.boot.img, {made}.system.img" in message
    assert "DSM_VirtualDSM_WRONG.boot.img" in message and "base.disk_base" in message
    assert not find_images(client, {L.RUN_ID: build.run_id, L.KIND: "checkpoint"})
    assert builds.containers_of(build.run_id) == []
