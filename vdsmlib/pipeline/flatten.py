"""The flatten stage: the final image = clean build base + the configured disks + restore settings.

Tags encode the DSM version and the variant (accelerator): ``<repository>:<version>-<variant>``
moves with every build; ``<repository>:<version>-<build>-<variant>-<fp8>`` names one build for
good. See README "Image tags".

Flatten makes a *candidate*: tagged ``<pinned tag>-candidate``, without the fingerprint label.
Only :func:`promote`, called once the smoke test passed, gives it the fingerprint label (which
makes the next build a no-op) and the pinned and moving tags. A candidate whose smoke test
failed is therefore never reused nor pulled by the moving tag.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

from vdsmlib.checkpoints.vm import vm_env
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import build_image, get_image, image_size, remove_image
from vdsmlib.errors import VdsmError
from vdsmlib.params import Params
from vdsmlib.pipeline.context import StageContext
from vdsmlib.pipeline.stage import StageOutcome
from vdsmlib.project import project_file

__all__ = ["FlattenResult", "candidate_tag", "final_tags", "flatten", "promote", "stage_flatten"]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass
class FlattenResult:
    image: str
    image_id: str
    tags: list[str]
    size_before: int
    size_after: int
    seconds: float


def final_tags(params: Params, accelerator: str, fingerprint: str) -> list[str]:
    """The pinned tag first, then the moving one.

    A build with simulator knobs (``SIM_*`` in ``env``) gets only the pinned tag: an awkward
    scenario must not move the tag that others pull.
    """
    repo = params.image.repository
    build = params.dsm_release.rsplit("-", 1)[-1]
    pinned = f"{repo}:{params.dsm_version}-{build}-{accelerator}-{fingerprint[:8]}"
    if any(name.startswith("SIM_") for name in params.env):
        return [pinned]
    return [pinned, f"{repo}:{params.dsm_version}-{accelerator}"]


def candidate_tag(params: Params, accelerator: str, fingerprint: str) -> str:
    """The tag of a final image that has not passed its smoke test yet."""
    return f"{final_tags(params, accelerator, fingerprint)[0]}-candidate"


def candidate_labels(params: Params, accelerator: str, qemu: str) -> dict[str, str]:
    """Every label of the final image except the fingerprint (see :func:`promote`)."""
    labels = L.owner_labels(
        "final",
        None,
        **{
            # The base's labels are inherited and a Dockerfile cannot drop one: emptied, they
            # match no build run (``vdsm clean --run-id``) and no fingerprint. The final image
            # carries no run's ownership: containers started from it belong to their users.
            L.OWNER: "",
            L.RUN_ID: "",
            L.PROCESS: "",
            L.FINGERPRINT: "",
            L.STAGE: "candidate",
            L.TARGET: params.target,
            L.DSM_VERSION: params.dsm_version,
            L.DSM_RELEASE: params.dsm_release,
            L.QEMU_VERSION: qemu,
            L.ACCELERATOR: accelerator,
            L.MACHINE: params.vm.machine,
            L.CPU_MODEL: params.vm.cpu_model,
        },
    )
    labels.update(
        {
            "org.opencontainers.image.title": f"Virtual DSM {params.dsm_release}, configured",
            "org.opencontainers.image.description": (
                f"{params.description}; admin user {params.admin.user!r}, wizard done, services "
                "on; restores from a QEMU snapshot"
            ),
            "org.opencontainers.image.version": f"{params.dsm_release}-{accelerator}",
            "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "org.opencontainers.image.vendor": "vdsm-ci",
            "vdsm-ci.admin-user": params.admin.user,
        }
    )
    return labels


def flatten(ctx: StageContext) -> FlattenResult:
    """Build the candidate final image from the ``final`` checkpoint (see :func:`promote`)."""
    started = time.monotonic()
    client, params, state = ctx.client, ctx.params, ctx.state
    checkpoint = state.checkpoints["final"]
    accelerator = state.accelerator or "tcg"
    fp = state.fingerprints["image"]
    tag = candidate_tag(params, accelerator, fp)
    env = vm_env(params, accelerator)
    health = (
        f"HEALTH_USER={urllib.parse.quote(params.admin.user, safe='')}\n"
        f"HEALTH_PASSWORD={urllib.parse.quote(params.admin.password, safe='')}\n"
        f"GUEST_ADDRESS={params.base.guest_address}\n"
    )
    with tempfile.TemporaryDirectory(prefix="vdsm-ci-flatten-") as tmp:
        shutil.copy(project_file("Dockerfile.flatten"), Path(tmp) / "Dockerfile")
        shutil.copy(ASSETS / "healthcheck.sh", Path(tmp) / "healthcheck.sh")
        (Path(tmp) / "health.conf").write_text(health)
        image = build_image(
            client,
            Path(tmp),
            dockerfile="Dockerfile",
            tag=tag,
            buildargs={
                "BASE": state.base_image or "",
                "CHECKPOINT": checkpoint,
                "VM_ARGUMENTS": "-loadvm final",
                **{
                    f"VM_{k}": env[k]
                    for k in ("KVM", "RAM_SIZE", "CPU_CORES", "CPU_MODEL", "MACHINE")
                },
                "VM_DISK_FMT": env["DISK_FMT"],
                "VM_DISK_SIZE": env["DISK_SIZE"],
            },
            labels=candidate_labels(params, accelerator, state.qemu_version or ""),
        )
    before = get_image(client, checkpoint)
    state.candidate = tag
    state.tags = []
    state.final_image_id = None
    ctx.save()
    return FlattenResult(
        image=tag,
        image_id=str(image.id),
        tags=[tag],
        size_before=image_size(before) if before else 0,
        size_after=image_size(image),
        seconds=round(time.monotonic() - started, 2),
    )


def promote(ctx: StageContext) -> list[str]:
    """Trust the candidate that passed its smoke test: fingerprint label, pinned and moving tags.

    Labels cannot change on an image, so the final image is the candidate plus one LABEL (same
    layers, no copy). The candidate tag is removed. Returns the tags, pinned first.
    """
    client, params, state = ctx.client, ctx.params, ctx.state
    if not state.candidate:
        raise VdsmError("no candidate final image to promote: run the flatten stage first")
    accelerator = state.accelerator or "tcg"
    fp = state.fingerprints["image"]
    tags = final_tags(params, accelerator, fp)
    with tempfile.TemporaryDirectory(prefix="vdsm-ci-promote-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(f"FROM {state.candidate}\n")
        image = build_image(
            client,
            Path(tmp),
            dockerfile="Dockerfile",
            tag=tags[0],
            labels={L.FINGERPRINT: fp, L.STAGE: "image", L.BUILT_BY: state.run_id},
        )
    for tag in tags[1:]:
        repo, _, name = tag.rpartition(":")
        image.tag(repo, name)
    remove_image(client, state.candidate)
    state.candidate = None
    state.tags = tags
    state.final_image_id = str(image.id)
    ctx.save()
    return tags


async def stage_flatten(ctx: StageContext) -> StageOutcome:
    """Clean base + configured disks -> the final image, tagged."""
    result = await asyncio.to_thread(flatten, ctx)
    return StageOutcome(
        detail=f"{result.image} ({result.size_after / 1e6:.0f} MB, was "
        f"{result.size_before / 1e6:.0f} MB before flattening)",
        facts=asdict(result),
    )
