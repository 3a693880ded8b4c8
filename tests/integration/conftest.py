"""Integration fixtures: a real dockerd, the simulator image, and builds that clean up after."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from vdsm_sim.image.build import ensure_sim_image

from vdsmlib.docker import labels as L
from vdsmlib.docker.engine import connect
from vdsmlib.docker.images import clean
from vdsmlib.pipeline import Build, BuildRecord

#: final images of this test session go to a repository of its own: never over a user's images,
#: and the cleanup removes this session's images only, not those of a session running beside it
#: (the process id: pytest's copy of this module and an `import` of it must agree)
TEST_REPOSITORY = f"vdsm-ci-test/configured-{os.getpid()}"


@pytest.fixture(scope="session")
def client() -> Iterator[docker.DockerClient]:
    client = connect()
    yield client
    client.close()


@pytest.fixture(scope="session")
def sim_image(client: docker.DockerClient) -> str:
    return str(ensure_sim_image(client).ref)


class Builds:
    """Runs builds for the tests and remembers their run ids, to remove what they made."""

    def __init__(self, client: docker.DockerClient, out_dir: Path):
        self.client = client
        self.out_dir = out_dir
        self.run_ids: list[str] = []

    def build(
        self, dsm_version: str = "sim", overrides: dict[str, Any] | None = None, **kwargs: Any
    ) -> BuildRecord:
        overrides = {"image_repository": TEST_REPOSITORY, **(overrides or {})}
        build = Build(dsm_version, overrides, out_dir=self.out_dir, client=self.client, **kwargs)
        self.run_ids.append(build.run_id)
        return asyncio.run(build.run())

    def start(
        self, dsm_version: str = "sim", overrides: dict[str, Any] | None = None, **kwargs: Any
    ) -> Build:
        overrides = {"image_repository": TEST_REPOSITORY, **(overrides or {})}
        build = Build(dsm_version, overrides, out_dir=self.out_dir, client=self.client, **kwargs)
        self.run_ids.append(build.run_id)
        return build

    def containers_of(self, run_id: str) -> list[str]:
        filters = {"label": [f"{L.OWNER}={L.OWNER_VALUE}", f"{L.RUN_ID}={run_id}"]}
        return [c.name for c in self.client.containers.list(all=True, filters=filters)]

    def cleanup(self) -> None:
        # Not the build base: it is tagged by fingerprint and reused by every build with that
        # fingerprint, also by sessions running beside this one (`vdsm clean` removes it).
        for run_id in self.run_ids:
            clean(self.client, run_id=run_id, kinds=("checkpoint", "final"))
        for image in self.client.images.list(name=TEST_REPOSITORY):
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(image.id, force=True)


@pytest.fixture(scope="session")
def builds(
    client: docker.DockerClient, sim_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Builds]:
    runner = Builds(client, tmp_path_factory.mktemp("out"))
    yield runner
    runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port_5000_busy() -> Iterator[None]:
    """Hold 127.0.0.1:5000 (if free) so that a build relying on it would fail."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 5000))
        sock.listen(1)
    except OSError:
        pass  # already busy: even better
    try:
        yield
    finally:
        sock.close()
