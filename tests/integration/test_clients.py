"""DSM's clients against the final image: a stock client's encrypted DSM 7 login over http,
API discovery listing every API the simulator serves, and HTTPS on 5001.

The build is the session's (tests/integration/conftest.py ``builds``: a build with the same
parameters as an earlier one in the session runs no stage).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from vdsm_sim.guest.webapi import CATALOG

from tests.integration.conftest import Builds, free_port
from tests.sim.test_guest_api import call, ok
from tests.sim.test_guest_login import stock_login
from vdsmlib.docker import labels as L
from vdsmlib.dsm.webapi import CATALOGUE
from vdsmlib.webapi.readiness import DsmApiReady

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SIM = {"user": "vdsm", "password": "CiNas-2024-Ready"}


@pytest.fixture(scope="module")
def final_image(builds: Builds) -> tuple[str, str]:
    record = builds.build(executor="inline")
    assert record.image, record.stages
    return record.image, record.run_id


@pytest.fixture(scope="module")
def running(
    final_image: tuple[str, str], client: docker.DockerClient
) -> Iterator[tuple[str, dict[str, Any], set[str]]]:
    """The final image started, its API answering: (http base, published ports, exposed)."""
    image, run_id = final_image
    exposed = set(client.images.get(image).attrs["Config"]["ExposedPorts"])
    ports: dict[str, Any] = {"5000/tcp": ("127.0.0.1", free_port())}
    if "5001/tcp" in exposed:
        ports["5001/tcp"] = ("127.0.0.1", free_port())
    # what virtual-dsm's NAT networking needs: the snapshot was taken with it
    container = client.containers.run(
        image,
        detach=True,
        ports=ports,
        labels=L.owner_labels("test", run_id),
        devices=["/dev/net/tun:/dev/net/tun:rwm"],
        cap_add=["NET_ADMIN"],
    )
    try:
        base = f"http://127.0.0.1:{ports['5000/tcp'][1]}"
        # The container answers HTML on 5000 before the guest's DSM does: wait for the API.
        DsmApiReady(base, timeout=120, request_timeout=5).wait(
            describe=lambda: container.logs(tail=30).decode(errors="replace")
        )
        yield base, ports, exposed
    finally:
        container.remove(force=True, v=True)


def test_query_all_lists_every_api_the_simulator_serves(
    running: tuple[str, dict[str, Any], set[str]],
) -> None:
    base, _, _ = running
    listed = ok(
        call(base, "query.cgi", api="SYNO.API.Info", version=1, method="query", query="all")
    )
    assert set(CATALOG) <= set(listed)
    assert set(listed) == set(CATALOGUE)


def test_stock_client_logs_in_encrypted_over_http_and_reads_nfs(
    running: tuple[str, dict[str, Any], set[str]], tmp_path: Path
) -> None:
    base, _, _ = running
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


def test_https_on_5001(running: tuple[str, dict[str, Any], set[str]]) -> None:
    _, ports, exposed = running
    assert "5001/tcp" in exposed
    url = (
        f"https://127.0.0.1:{ports['5001/tcp'][1]}"
        "/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query"
    )
    out = subprocess.run(["curl", "-sk", url], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["success"] is True
