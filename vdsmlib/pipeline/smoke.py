"""smoke: the candidate final image, started fresh, must log in, serve and turn healthy before
it is promoted (tags, fingerprint label)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from vdsmlib.docker import labels as L
from vdsmlib.docker.container import VmContainer
from vdsmlib.docker.images import get_image
from vdsmlib.errors import VdsmError
from vdsmlib.pipeline.context import StageContext
from vdsmlib.pipeline.flatten import promote
from vdsmlib.pipeline.stage import StageOutcome
from vdsmlib.readiness import NotReady, wait_for
from vdsmlib.services import api as services_api
from vdsmlib.services import dataplane
from vdsmlib.webapi.client import DsmClient
from vdsmlib.webapi.readiness import DsmApiReady, DsmLoginReady

__all__ = ["stage_smoke"]

log = logging.getLogger(__name__)


async def stage_smoke(ctx: StageContext) -> StageOutcome:
    """Start the final image fresh: API up, admin login, services as desired, container healthy."""
    params, state = ctx.params, ctx.state
    image = state.candidate or (state.tags[0] if state.tags else None)
    if image is None or get_image(ctx.client, image) is None:
        raise VdsmError("no final image to smoke-test: run the flatten stage first")
    devices = ["/dev/kvm"] if state.accelerator == "kvm" else []
    started = time.monotonic()
    with VmContainer.start(
        ctx.client,
        image,
        labels=L.owner_labels("smoke", state.run_id),
        devices=[*params.run.devices, *devices],
        cap_add=params.run.cap_add,
        keep=state.keep,
        ports=(5000, *dataplane.SERVICE_PORTS.values()),
    ) as vm:
        url = vm.url(5000)
        await (
            DsmApiReady(url)
            .with_timeout(params.timeouts.restore)
            .wait_async(describe=lambda: vm.logs_tail(20), alive=vm.died)
        )
        api_seconds = time.monotonic() - started
        await (
            DsmLoginReady(url, params.admin.user, params.admin.password)
            .with_timeout(60)
            .wait_async(describe=lambda: vm.logs_tail(20), alive=vm.died)
        )
        login_seconds = time.monotonic() - started
        with (
            DsmClient(url, timeout=params.timeouts.request) as dsm,
            dsm.login(params.admin.user, params.admin.password) as session,
        ):
            await asyncio.to_thread(services_api.verify, session, params.services)
        ports = dataplane.Endpoints(
            "127.0.0.1", *map(vm.host_port, dataplane.SERVICE_PORTS.values())
        )
        plane = await asyncio.to_thread(
            services_api.verify_data_plane,
            ports,
            params.services,
            user=params.admin.user,
            password=params.admin.password,
            server_name=params.admin.server_name,
            build_file=True,
        )
        health = await _wait_healthy(vm, timeout=90)
        facts: dict[str, Any] = {
            "restore_to_api_seconds": round(api_seconds, 2),
            "restore_to_login_seconds": round(login_seconds, 2),
            "health": health,
            "data_plane": plane,
            "url": url if state.keep else None,
        }
    # Only now does the image become the trusted final image (tags, fingerprint label).
    promoted = await asyncio.to_thread(promote, ctx) if state.candidate else state.tags
    facts["tags"] = promoted
    return StageOutcome(
        detail=f"fresh container: API in {api_seconds:.1f} s, admin login in "
        f"{login_seconds:.1f} s, services and data plane verified, health {health}; "
        f"final image {promoted[0]}",
        facts=facts,
    )


async def _wait_healthy(vm: VmContainer, *, timeout: float) -> str:
    """Wait for Docker's health status ``healthy``; an image without a health check fails."""

    async def health(_budget: float) -> str:
        state = await asyncio.to_thread(vm.attrs)
        health = state.get("State", {}).get("Health") or {}
        status = str(health.get("Status", "none"))
        if status == "none":
            raise VdsmError(
                "the final image has no health check (Docker reports no health status): "
                "check the HEALTHCHECK of Dockerfile.flatten"
            )
        if status == "unhealthy":
            log_tail = (health.get("Log") or [{}])[-1].get("Output", "")
            raise VdsmError(f"final image reported unhealthy: {log_tail.strip()[:300]}")
        if status != "healthy":
            raise NotReady(f"health status {status}")
        return status

    return await wait_for(
        health,
        what="the final image's health check",
        timeout=timeout,
        interval=0.5,
        describe=lambda: vm.logs_tail(20),
    )
