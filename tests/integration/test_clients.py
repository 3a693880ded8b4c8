"""DSM's clients against the final image: a stock client's encrypted DSM 7 login over http,
API discovery listing every API the simulator serves, and HTTPS on 5001.

The build is the session's (tests/integration/conftest.py ``builds``: a build with the same
parameters as an earlier one in the session runs no stage).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from tests.integration.conftest import Builds, free_port
from tests.sim.test_guest_api import call, ok
from tests.sim.test_guest_login import stock_login
from vdsmlib.docker import labels as L
from vdsmlib.sim.guest.webapi import CATALOG

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SIM = {"user": "vdsm", "password": "CiNas-2024-Ready"}


@pytest.fixture(scope="module")
def final_image(builds: Builds) -> tuple[str, str]:
    record = builds.build(executor="inline")
    assert record.image, record.stages
    return record.image, record.run_id


def test_stock_client_against_the_final_image(
    final_image: tuple[str, str], client: docker.DockerClient, tmp_path: Path
) -> None:
    image, run_id = final_image
    exposed = set(client.images.get(image).attrs["Config"]["ExposedPorts"])
    ports: dict[str, Any] = {"5000/tcp": ("127.0.0.1", free_port())}
    if "5001/tcp" in exposed:
        ports["5001/tcp"] = ("127.0.0.1", free_port())
    container = client.containers.run(
        image, detach=True, ports=ports, labels=L.owner_labels("test", run_id)
    )
    try:
        base = f"http://127.0.0.1:{ports['5000/tcp'][1]}"
        deadline = time.monotonic() + 120
        listed: dict[str, Any] = {}
        while time.monotonic() < deadline and not listed:
            try:
                listed = ok(
                    call(
                        base,
                        "query.cgi",
                        api="SYNO.API.Info",
                        version=1,
                        method="query",
                        query="all",
                    )
                )
            except (requests.RequestException, AssertionError, ValueError):
                time.sleep(0.5)
        assert listed, container.logs(tail=30).decode(errors="replace")
        assert set(listed) == set(CATALOG)
        http, envelope = stock_login(base, tmp_path, password=SIM["password"], account=SIM["user"])
        login = ok(envelope)
        token = {"X-SYNO-TOKEN": login["synotoken"]}
        nfs = ok(
            call(
                base,
                session=http,
                headers=token,
                api="SYNO.Core.FileServ.NFS",
                version=2,
                method="get",
            )
        )
        assert nfs["enable_nfs"] is True  # the build's services stage turned it on
        if "5001/tcp" not in exposed:
            pytest.skip("the final image does not publish 5001 (HTTPS) yet: vdsmlib/sim/image")
        url = f"https://127.0.0.1:{ports['5001/tcp'][1]}/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query"
        out = subprocess.run(["curl", "-sk", url], capture_output=True, text=True, check=True)
        assert json.loads(out.stdout)["success"] is True
    finally:
        container.remove(force=True, v=True)
