"""The flatten stage: the final image = clean build base + the configured disks + restore settings.

Tags encode the DSM version and the variant (accelerator): ``<repository>:<version>-<variant>``
moves with every build; ``<repository>:<version>-<build>-<variant>-<fp8>`` names one build for
good. See README "Image tags".
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from vdsmlib.build.context import StageContext
from vdsmlib.build.vm import vm_env
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import build_image, get_image, image_size
from vdsmlib.params import Params
from vdsmlib.project import project_file

__all__ = ["FlattenResult", "final_tags", "flatten"]

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
    """The pinned tag first, then the moving one."""
    repo = params.image.repository
    build = params.dsm_release.rsplit("-", 1)[-1]
    return [
        f"{repo}:{params.dsm_version}-{build}-{accelerator}-{fingerprint[:8]}",
        f"{repo}:{params.dsm_version}-{accelerator}",
    ]


def final_labels(params: Params, state_fp: str, accelerator: str, qemu: str) -> dict[str, str]:
    labels = L.owner_labels(
        "final",
        None,
        **{
            L.FINGERPRINT: state_fp,
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
    started = time.monotonic()
    client, params, state = ctx.client, ctx.params, ctx.state
    checkpoint = state.checkpoints["final"]
    accelerator = state.accelerator or "tcg"
    fp = state.fingerprints["image"]
    tags = final_tags(params, accelerator, fp)
    env = vm_env(params, accelerator)
    health = (
        f"HEALTH_USER={urllib.parse.quote(params.admin.user, safe='')}\n"
        f"HEALTH_PASSWORD={urllib.parse.quote(params.admin.password, safe='')}\n"
    )
    with tempfile.TemporaryDirectory(prefix="vdsm-ci-flatten-") as tmp:
        shutil.copy(project_file("Dockerfile.flatten"), Path(tmp) / "Dockerfile")
        shutil.copy(ASSETS / "healthcheck.sh", Path(tmp) / "healthcheck.sh")
        (Path(tmp) / "health.conf").write_text(health)
        image = build_image(
            client,
            Path(tmp),
            dockerfile="Dockerfile",
            tag=tags[0],
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
            labels=final_labels(params, fp, accelerator, state.qemu_version or ""),
        )
    for tag in tags[1:]:
        repo, _, name = tag.rpartition(":")
        image.tag(repo, name)
    before = get_image(client, checkpoint)
    state.tags = tags
    state.final_image_id = str(image.id)
    ctx.save()
    return FlattenResult(
        image=tags[0],
        image_id=str(image.id),
        tags=tags,
        size_before=image_size(before) if before else 0,
        size_after=image_size(image),
        seconds=round(time.monotonic() - started, 2),
    )
