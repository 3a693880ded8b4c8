"""The stage functions. Each takes a :class:`StageContext` and returns a :class:`StageOutcome`.

They are the same whether the orchestrator calls them in-process or a stage notebook calls them
through :func:`run_stage` in its own kernel: everything they share goes through the run folder.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vdsmlib import dataplane
from vdsmlib.build import base as base_image
from vdsmlib.build import fingerprints as fps
from vdsmlib.build.context import StageContext
from vdsmlib.build.flatten import flatten, promote
from vdsmlib.build.vm import StageVm
from vdsmlib.docker import labels as L
from vdsmlib.docker.container import ContainerExited, VmContainer
from vdsmlib.docker.images import get_image
from vdsmlib.errors import VdsmError
from vdsmlib.readiness import DsmApiReady, DsmLoginReady, NotReady, wait_for
from vdsmlib.webapi import services as services_api
from vdsmlib.webapi.client import DsmClient
from vdsmlib.wizard import BrowserSession, Credentials, StageReport, WizardError, load_stage_profile
from vdsmlib.wizard import run_stage as run_wizard_stage
from vdsmlib.wizard.secrets import forget_cookies, session_ids

__all__ = ["STAGE_FUNCTIONS", "StageOutcome", "run_stage"]

log = logging.getLogger(__name__)


@dataclass
class StageOutcome:
    """What a stage reports back to the orchestrator (written to ``stages/<name>.json``)."""

    status: str = "ran"  # ran | skipped
    detail: str = ""
    screenshots: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    #: one entry per wizard screen (see :func:`screen_entries`), paths relative to the run folder
    screens: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def write(self, run_dir: Path, stage: str) -> None:
        folder = run_dir / "stages"
        folder.mkdir(exist_ok=True)
        (folder / f"{stage}.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, run_dir: Path, stage: str) -> StageOutcome | None:
        path = run_dir / "stages" / f"{stage}.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None


def _wizard_values(ctx: StageContext) -> dict[str, str]:
    admin = ctx.params.admin
    return {
        "server_name": admin.server_name,
        "admin_user": admin.user,
        "admin_password": admin.password,
    }


async def _run_wizard(ctx: StageContext, stage: str, vm: StageVm, outcome: StageOutcome) -> None:
    """Run one wizard stage's profile in a browser context that keeps the DSM session.

    The VM is watched meanwhile: if its container dies (QEMU killed, out of memory), the stage
    fails at once with the container's log tail instead of waiting out the screen timeout.
    """
    profile = load_stage_profile(ctx.params.profile, stage, search=ctx.params.profile_dirs)
    admin = ctx.params.admin
    # Before the admin account exists there is no login page to pass.
    credentials = None if stage in ("boot", "admin") else Credentials(admin.user, admin.password)
    async with BrowserSession(ctx.evidence_dir, storage_state=ctx.storage_state) as session:
        wizard = asyncio.create_task(
            run_wizard_stage(session, profile, _wizard_values(ctx), vm.url, credentials=credentials)
        )
        watch = asyncio.create_task(_watch(vm))
        try:
            await asyncio.wait({wizard, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (wizard, watch):
                task.cancel()
            await asyncio.gather(wizard, watch, return_exceptions=True)
        if watch.done() and not watch.cancelled() and watch.exception() is not None:
            raise watch.exception()  # type: ignore[misc]
        try:
            report = wizard.result()
        except WizardError as err:
            if err.report is not None:  # the failed stage's record reads them from here
                _save_screens(ctx, err.report)
            raise
    outcome.screens += _save_screens(ctx, report)
    outcome.screenshots += [str(p) for p in report.screenshots]
    if report.video:
        outcome.videos.append(str(report.video))
    if report.trace:
        outcome.traces.append(str(report.trace))
    handled = ", ".join(report.handled) or "none"
    outcome.detail = (outcome.detail + f" {stage}: screens {handled}.").strip()


def screen_entries(run_dir: Path, report: StageReport) -> list[dict[str, Any]]:
    """The screens of a wizard report for result.json: each handled or skipped screen, then
    the one it failed on, with screenshot, clip and video relative to ``run_dir``."""

    def rel(path: Path | None) -> str | None:
        if path is None:
            return None
        try:
            return str(path.relative_to(run_dir))
        except ValueError:
            return str(path)

    records = [*report.screens, *([report.failed_screen] if report.failed_screen else [])]
    return [
        {
            "stage": report.stage,
            "screen": record.screen,
            "screenshot": rel(record.screenshot),
            "clip": rel(record.clip),
            "video": rel(report.video),
            "video_start": record.video_start,
            "video_end": record.video_end,
            "seconds_to_leave": round(record.seconds_to_leave, 3),
            "skipped": record.skipped,
            "failed": record.failed,
        }
        for record in records
    ]


def _save_screens(ctx: StageContext, report: StageReport) -> list[dict[str, Any]]:
    """Write ``evidence/<stage>.screens.json`` (what a failed stage's record lists); a write
    that fails costs that file, not the stage (nor a failed stage's own error)."""
    entries = screen_entries(ctx.run_dir, report)
    path = ctx.evidence_dir / f"{report.stage}.screens.json"
    try:
        path.write_text(json.dumps(entries, indent=2) + "\n")
    except OSError as err:
        log.warning("stage %s: %s not written: %s", report.stage, path, err)
    return entries


async def _watch(vm: StageVm, interval: float = 1.0) -> None:
    """Return never; raise ContainerExited as soon as the VM's container is gone."""
    while True:
        reason = await asyncio.to_thread(vm.container.died)
        if reason:
            raise ContainerExited(f"the VM died during the wizard: {reason}")
        await asyncio.sleep(interval)


def _checkpoint_labels(ctx: StageContext, name: str) -> dict[str, str]:
    state, params = ctx.state, ctx.params
    return L.owner_labels(
        "checkpoint",
        state.run_id,
        **{
            L.STAGE: name,
            L.FINGERPRINT: state.fingerprints[name],
            L.TARGET: params.target,
            L.DSM_VERSION: params.dsm_version,
            L.DSM_RELEASE: params.dsm_release,
            L.QEMU_VERSION: state.qemu_version or "",
            L.ACCELERATOR: state.accelerator or "",
            L.MACHINE: params.vm.machine,
            L.CPU_MODEL: params.vm.cpu_model,
        },
    )


def _checkpoint_tag(ctx: StageContext, name: str) -> str:
    fp = ctx.state.fingerprints[name]
    return f"{ctx.params.dsm_version}-{ctx.state.accelerator}-{name}-{fp[:12]}"


def _start_vm(ctx: StageContext, stage: str, image: str, loadvm: str | None) -> StageVm:
    binds = {ctx.state.pat_path: "/boot.pat"} if ctx.state.pat_path and loadvm is None else None
    return StageVm.start(
        ctx.client,
        image,
        ctx.params,
        accelerator=ctx.state.accelerator or "tcg",
        run_id=ctx.state.run_id,
        stage=stage,
        loadvm=loadvm,
        binds=binds,
        network=ctx.state.network,
    )


# -- stages -----------------------------------------------------------------------------------


async def stage_prepare(ctx: StageContext) -> StageOutcome:
    """Upstream image, PAT, build base, QEMU version, accelerator, fingerprints."""
    prepared = await asyncio.to_thread(base_image.prepare_base, ctx)
    state = ctx.state
    state.fingerprints = fps.compute(ctx.params, prepared)
    ctx.save()
    return StageOutcome(
        status="ran" if prepared.built else "skipped",
        detail=prepared.detail,
        facts={"base_image": prepared.base_image, "accelerator": prepared.accelerator},
    )


async def stage_boot(ctx: StageContext) -> StageOutcome:
    """Cold boot (DSM installs), wait for the welcome screen, checkpoint ``start-ready``."""
    outcome = StageOutcome()
    assert ctx.state.base_image, "prepare has not run"
    with _start_vm(ctx, "boot", ctx.state.base_image, loadvm=None) as vm:
        seconds = await vm.wait_api(ctx.params.timeouts.boot, progress=True)
        outcome.facts["boot_to_api_seconds"] = round(seconds, 2)
        await _run_wizard(ctx, "boot", vm, outcome)
        # The PAT is no longer needed and must not end up in an image.
        vm.container.exec("sh", "-c", 'rm -f "${STORAGE:-/storage}"/*.pat')
        _check_disk_names(vm, ctx.params.base.disk_base)
        cp = await vm.checkpoint(
            "start-ready",
            labels=_checkpoint_labels(ctx, "start-ready"),
            tag=_checkpoint_tag(ctx, "start-ready"),
            timeout=ctx.params.timeouts.savevm,
        )
    ctx.state.checkpoints["start-ready"] = cp.image
    ctx.save()
    outcome.facts["start_ready_vm_state_bytes"] = cp.vm_state_size
    outcome.detail = f"boot to API {seconds:.1f} s; checkpoint {cp.image}"
    return outcome


def _check_disk_names(vm: StageVm, disk_base: str) -> None:
    """The install made ``<disk_base>.boot.img`` and ``.system.img`` (params say what to expect).

    virtual-dsm names them ``DSM_VirtualDSM`` when the PAT is mounted at /boot.pat, as the build
    does, and after the PAT's file name when it comes from ``URL`` (v7.41 src/install.sh).
    """
    names = vm.container.exec("sh", "-c", 'ls "${STORAGE:-/storage}"').split()
    wanted = [f"{disk_base}.boot.img", f"{disk_base}.system.img"]
    if not all(name in names for name in wanted):
        found = sorted(n for n in names if n.endswith((".boot.img", ".system.img")))
        raise VdsmError(
            f"the install made {', '.join(found) or 'no boot/system disks'} in /storage, not "
            f"{' and '.join(wanted)}: set base.disk_base in params to the name before "
            "'.boot.img'"
        )


def _configure_vm(ctx: StageContext, stage: str) -> StageVm:
    """The VM shared by admin, post-wizard and services: reattach, or restore start-ready."""
    state = ctx.state
    if state.container_id:
        vm = StageVm.attach(ctx.client, state.container_id, ctx.params, state.accelerator or "tcg")
        if vm.container.died() is None:
            return vm
        reason = vm.container.died()
        vm.container.keep = False
        vm.close()
        raise VdsmError(f"the VM of this build is gone: {reason}")
    image = state.checkpoints.get("start-ready")
    if not image:
        raise VdsmError("no start-ready checkpoint to restore: run the boot stage first")
    vm = _start_vm(ctx, stage, image, loadvm="start-ready")
    vm.container.keep = True  # later stages (other processes) reattach; the orchestrator reaps
    state.container_id = vm.container.id
    ctx.save()
    return vm


async def _configure_stage(ctx: StageContext, stage: str) -> StageOutcome:
    outcome = StageOutcome()
    vm = _configure_vm(ctx, stage)
    seconds = await vm.wait_api(ctx.params.timeouts.restore)
    outcome.facts["api_ready_seconds"] = round(seconds, 2)
    await _run_wizard(ctx, stage, vm, outcome)
    return outcome


async def stage_admin(ctx: StageContext) -> StageOutcome:
    """Welcome button and the admin account form."""
    return await _configure_stage(ctx, "admin")


async def stage_post_wizard(ctx: StageContext) -> StageOutcome:
    """Whatever post-wizard screens DSM shows, until the desktop."""
    return await _configure_stage(ctx, "post-wizard")


async def stage_services(ctx: StageContext) -> StageOutcome:
    """Desired services via the Web API (NFS optionally via the UI); checkpoint ``final``."""
    outcome = StageOutcome()
    vm = _configure_vm(ctx, "services")
    await vm.wait_api(ctx.params.timeouts.restore)
    params = ctx.params
    if params.nfs_via == "ui" and params.services.nfs:
        await _run_wizard(ctx, "services-ui", vm, outcome)
    with (
        DsmClient(vm.url) as dsm,
        dsm.login(params.admin.user, params.admin.password) as session,
    ):
        report = await asyncio.to_thread(services_api.apply, session, params.services)
        await asyncio.to_thread(services_api.verify, session, params.services)
    outcome.facts["services_changed"] = list(report.changes)
    # A file in the first share, for every restore of the final image to serve (smoke reads it
    # back over SMB and NFS): the data plane used as a client would, before the checkpoint.
    outcome.facts["build_file"] = await asyncio.to_thread(
        dataplane.write_build_file,
        vm.endpoints(),
        params.services,
        user=params.admin.user,
        password=params.admin.password,
    )
    vm.container.keep = False
    try:
        outcome.facts["sessions_ended"] = await asyncio.to_thread(_end_sessions, ctx, vm.url)
        cp = await vm.checkpoint(
            "final",
            labels=_checkpoint_labels(ctx, "final"),
            tag=_checkpoint_tag(ctx, "final"),
            timeout=params.timeouts.savevm,
        )
    finally:
        vm.close()
        ctx.state.container_id = None
        ctx.save()
    ctx.state.checkpoints["final"] = cp.image
    ctx.save()
    outcome.facts["final_vm_state_bytes"] = cp.vm_state_size
    outcome.detail = (
        f"services applied ({', '.join(outcome.facts['services_changed']) or 'no changes'}) "
        f"and verified; checkpoint {cp.image}"
    )
    return outcome


def _end_sessions(ctx: StageContext, url: str) -> int:
    """Log out every DSM session the build opened, before ``savevm final``.

    The snapshot holds DSM's memory: a session still open there would work as admin on every
    container of the final image. The browser's sessions (its ``id`` cookie in the storage
    state, the ids in the stage traces) are ended through ``SYNO.API.Auth`` logout and checked
    to be refused afterwards; the storage state keeps no cookie. Returns how many were ended.
    """
    sids = session_ids(ctx.run_dir)
    auth = "SYNO.API.Auth"
    with DsmClient(url) as dsm:
        entry = dsm.api_entry(auth)
        cgi = str(entry.get("path", "entry.cgi"))
        for sid in sorted(sids):
            params = {"api": auth, "version": "1", "method": "logout", "_sid": sid}
            dsm.call(cgi, params, api=auth, method="logout", cookies={"id": sid})
        alive = [sid for sid in sorted(sids) if _session_works(dsm, sid)]
    if alive:
        raise VdsmError(
            f"{len(alive)} DSM session(s) of the build still work after logout: the final "
            "checkpoint would carry an admin session; see SYNO.API.Auth logout of this DSM"
        )
    forget_cookies(ctx.storage_state)
    log.info("ended %d DSM session(s) before the final checkpoint", len(sids))
    return len(sids)


def _session_works(dsm: DsmClient, sid: str) -> bool:
    """True when ``sid`` is accepted for a call that needs a login."""
    api = "SYNO.Core.System"
    params = {"api": api, "version": "1", "method": "info", "_sid": sid}
    envelope = dsm.call(
        str(dsm.api_entry(api).get("path", "entry.cgi")),
        params,
        api=api,
        method="info",
        cookies={"id": sid},
    )
    return bool(envelope.get("success"))


async def stage_flatten(ctx: StageContext) -> StageOutcome:
    """Clean base + configured disks -> the final image, tagged."""
    result = await asyncio.to_thread(flatten, ctx)
    return StageOutcome(
        detail=f"{result.image} ({result.size_after / 1e6:.0f} MB, was "
        f"{result.size_before / 1e6:.0f} MB before flattening)",
        facts=asdict(result),
    )


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
            DsmClient(url) as dsm,
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


STAGE_FUNCTIONS: dict[str, Callable[[StageContext], Awaitable[StageOutcome]]] = {
    "prepare": stage_prepare,
    "boot": stage_boot,
    "admin": stage_admin,
    "post-wizard": stage_post_wizard,
    "services": stage_services,
    "flatten": stage_flatten,
    "smoke": stage_smoke,
}


async def run_stage(run_dir: str | os.PathLike[str], stage: str) -> StageOutcome:
    """Run one stage of the build in ``run_dir`` (what each stage notebook calls).

    The outcome is also written to ``<run_dir>/stages/<stage>.json`` for the orchestrator.
    """
    if stage not in STAGE_FUNCTIONS:
        raise VdsmError(f"unknown stage {stage!r} (stages: {', '.join(STAGE_FUNCTIONS)})")
    ctx = StageContext(Path(run_dir))
    outcome = await STAGE_FUNCTIONS[stage](ctx)
    outcome.write(ctx.run_dir, stage)
    return outcome
