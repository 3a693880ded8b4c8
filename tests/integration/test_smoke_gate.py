"""A final image is trusted only after its smoke test passed.

Flatten makes a candidate (``...-candidate``, no fingerprint label); the smoke stage starts it
fresh and, only when everything passed, gives it the fingerprint label (which makes the next
build a no-op) and the pinned and moving tags. Here the smoke test fails honestly: in its
container a firewall rule resets every connection forwarded to DSM's SMB port (the Web API still
says SMB is on, the port refuses: what the data-plane check exists to catch).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import docker
import pytest
from docker.models.containers import Container

from tests.integration.conftest import TEST_REPOSITORY, Builds
from vdsmlib.docker import labels as L
from vdsmlib.docker.container import VmContainer
from vdsmlib.docker.images import find_images, get_image
from vdsmlib.errors import VdsmError
from vdsmlib.pipeline import StageError
from vdsmlib.pipeline.smoke import _wait_healthy
from vdsmlib.readiness import NotReady, ReadinessAborted, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def repository(client: docker.DockerClient) -> Iterator[str]:
    """A repository of this test's own: its image fingerprint matches no other test's build."""
    repo = f"{TEST_REPOSITORY}-smoke-{uuid.uuid4().hex[:8]}"
    yield repo
    for image in client.images.list(name=repo):
        for tag in image.tags:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag, force=True)


def test_failed_smoke_leaves_no_trusted_image_and_the_next_build_runs(
    builds: Builds, client: docker.DockerClient, repository: str
) -> None:
    overrides = {"image_repository": repository}
    build = builds.start(overrides=overrides, executor="inline")
    blocked: list[str] = []
    # virtual-dsm v7.41 src/network.sh DNATs what reaches eth0 to DSM, so it passes FORWARD
    reset_smb = ["iptables", "-I", "FORWARD", "-p", "tcp", "--dport", "445",
                 "-j", "REJECT", "--reject-with", "tcp-reset"]  # fmt: skip

    async def run_and_block_smb_in_smoke() -> None:
        task = asyncio.create_task(build.run())
        filters = {"label": [f"{L.RUN_ID}={build.run_id}", f"{L.KIND}=smoke"]}

        async def smoke_container(budget: float) -> Container:
            running = await asyncio.to_thread(client.containers.list, filters=filters)
            if not running:
                raise NotReady("no smoke container runs yet")
            return running[0]

        # The smoke stage starts one container and waits for DSM in it (seconds) before it
        # checks the data plane: SMB is blocked in it long before.
        try:
            container = await wait_for(
                smoke_container,
                what="the smoke stage's container",
                timeout=1800,
                interval=0.1,
                alive=lambda: "the build ended" if task.done() else None,
            )
        except ReadinessAborted:
            await task  # the build ended before its smoke stage: its own error, if it failed
            raise
        done = await asyncio.to_thread(container.exec_run, reset_smb)
        assert done.exit_code == 0, done.output
        blocked.append(container.name)
        await task

    with pytest.raises(StageError) as exc:
        asyncio.run(run_and_block_smb_in_smoke())
    assert exc.value.stage == "smoke", exc.value
    assert blocked, "the smoke container was never seen"
    # one line that names the service and how it failed
    assert "smb data plane: refused" in str(exc.value), exc.value
    failed = build.record
    statuses = {s.name: s.status for s in failed.stages}
    assert statuses["flatten"] == "ran" and statuses["smoke"] == "failed"
    assert failed.image is None and failed.tags == []
    fingerprint = failed.fingerprint
    assert fingerprint
    variant = f"sim-{failed.accelerator}"
    pinned = f"{repository}:sim-72806-{failed.accelerator}-{fingerprint[:8]}"
    # the candidate is there (evidence), untrusted: no fingerprint label, no pinned/moving tag
    candidate = get_image(client, f"{pinned}-candidate")
    assert candidate is not None
    assert candidate.labels[L.FINGERPRINT] == ""  # (the base's is inherited, so emptied)
    assert candidate.labels[L.RUN_ID] == ""
    assert candidate.labels[L.STAGE] == "candidate"
    assert get_image(client, pinned) is None
    assert get_image(client, f"{repository}:{variant}") is None
    assert find_images(client, {L.KIND: "final", L.FINGERPRINT: fingerprint}) == []

    # the next build is no no-op: it flattens and smoke-tests again, and then trusts the image
    again = builds.build(overrides=overrides, executor="inline")
    statuses = {s.name: s.status for s in again.stages}
    assert again.status == "ok", again.error
    assert "nothing to do" not in again.plan
    assert statuses["flatten"] == "ran" and statuses["smoke"] == "ran", statuses
    assert statuses["services"] in ("resumed", "ran")
    assert again.fingerprint == fingerprint
    assert again.tags == [pinned, f"{repository}:{variant}"]
    trusted = client.images.get(pinned)
    assert trusted.labels[L.FINGERPRINT] == fingerprint
    assert trusted.id == client.images.get(f"{repository}:{variant}").id == again.image_id
    assert get_image(client, f"{pinned}-candidate") is None

    # ... and only now is a build a no-op
    third = builds.build(overrides=overrides, executor="inline")
    assert {s.status for s in third.stages} == {"skipped"}, third.stages
    assert third.image == pinned


def test_smoke_requires_a_health_check(client: docker.DockerClient, sim_image: str) -> None:
    """An image without a HEALTHCHECK (Docker reports no status) does not pass as healthy."""
    assert not client.images.get(sim_image).attrs["Config"].get("Healthcheck")
    container = client.containers.run(
        sim_image, entrypoint=["sleep", "60"], detach=True, labels=L.owner_labels("test")
    )
    try:
        vm = VmContainer.attach(client, container.id)
        with pytest.raises(VdsmError, match="has no health check"):
            asyncio.run(_wait_healthy(vm, timeout=10))
    finally:
        container.remove(force=True)
