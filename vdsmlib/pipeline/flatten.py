"""The flatten stage: the final image = clean build base + the configured disks + restore settings.

Tags encode the DSM version and the variant (accelerator): ``<repository>:<version>-<variant>``
moves with every build; ``<repository>:<version>-<build>-<variant>-<fp8>`` names one build for
good: it never moves off an image a smoke test passed; a rebuild of the same fingerprint
(``no_cache``) gets ``...-<fp8>-2``, ``-3`` (:func:`free_pinned_tag`). See README "Image tags".

Flatten makes a *candidate*: tagged ``<pinned tag>-candidate``, without the fingerprint label.
Only :func:`promote`, called once the smoke test passed, gives it the fingerprint label (which
makes the next build a no-op) and the pinned and moving tags, and records the promoted image's
ID as smoke-tested (:mod:`vdsmlib.pipeline.trust`): a no-op reuses only an image so recorded,
never a copy that inherited the labels. A candidate whose smoke test failed is therefore never
reused nor pulled by the moving tag.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vdsmlib.checkpoints.vm import vm_env
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import build_image, get_image, image_size, remove_image
from vdsmlib.errors import VdsmError
from vdsmlib.params import Params
from vdsmlib.pipeline.context import StageContext
from vdsmlib.pipeline.stage import StageOutcome
from vdsmlib.pipeline.trust import record_smoke_passed, smoke_passed
from vdsmlib.project import project_file
from vdsmlib.qemu.migration import incoming_argument

__all__ = [
    "FlattenResult",
    "candidate_tag",
    "final_env",
    "final_tags",
    "flatten",
    "free_pinned_tag",
    "promote",
    "restore_contract",
    "stage_flatten",
]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
#: the files of ASSETS that go into the final image (also in the image's fingerprint:
#: vdsmlib.checkpoints.fingerprints.IMAGE_ASSETS)
IMAGE_ASSET_FILES = ("healthcheck.sh", "restore-check.sh", "restore-entry.sh")
#: the line of Dockerfile.flatten that becomes the ENV instruction of :func:`final_env`
VM_ENV_LINE = re.compile(r"^# vdsm-ci:vm-env$", re.MULTILINE)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: the build host's CPU flags a KVM snapshot needs on the restoring host: what virtual-dsm
#: v7.41 src/proc.sh chooses the guest's CPU by (sse4_2; invtsc through tsc_scale on AMD and
#: the "vmx flags" tsc_scaling on Intel), and the virtualisation extension itself
KVM_CPU_FLAGS = ("sse4_2", "svm", "tsc_scale", "tsc_scaling", "vmx")


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


def final_env(params: Params, accelerator: str) -> dict[str, str]:
    """Every variable that shaped the VM when the checkpoint was taken (:func:`vm_env`: the VM
    settings and the target's ``env``), and ``ARGUMENTS`` that restore it.

    ``-incoming file:/storage/final.state`` loads the state (the VM runs once it is loaded);
    ``-snapshot`` keeps the image's disks as they were when the state was saved: QEMU writes to
    temporary overlays instead, so every start (also ``docker restart``) finds the disks that
    match the state (a state file, unlike savevm's ``-loadvm``, does not roll disks back).
    """
    env = {**vm_env(params, accelerator), "ARGUMENTS": f"{incoming_argument('final')} -snapshot"}
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name) or "\n" in value:
            raise VdsmError(
                f"env {name}={value!r} cannot go into the final image: use a variable name of "
                "letters, digits and _ and a value without line breaks (params `env`)"
            )
    return env


#: How every start of the final image opens its disks; not part of the VM's shape, so not in
#: restore.conf (a container may set its own) and left to the target's ``env`` when it sets
#: them. Under ``-snapshot`` the image's disks are only read and the guest's writes go to
#: temporary overlays that end with the container: O_DIRECT (virtual-dsm's default
#: ``cache=none,aio=native``) and honoured flushes keep nothing there, and buffered opens are
#: quicker (from opening the first disk to loading the state: about 0.17 s with O_DIRECT, 0.06 s
#: without, on the simulator image; benchmarks/README.md). virtual-dsm reads both variables:
#: v7.41 src/disk.sh:6,10, and qemus/qemu v7.48 src/disk.sh:6,13 (what virtual-dsm v7.65 is
#: built on), which itself opens its installer media with ``cache=unsafe``.
RESTORE_IO_ENV = {"DISK_CACHE": "unsafe", "DISK_IO": "threads"}


def image_env(params: Params, accelerator: str) -> dict[str, str]:
    """The final image's ``ENV``: :func:`final_env`, and :data:`RESTORE_IO_ENV` unless the
    target's ``env`` sets those variables."""
    env = final_env(params, accelerator)
    return {**{k: v for k, v in RESTORE_IO_ENV.items() if k not in env}, **env}


def env_instruction(env: dict[str, str]) -> str:
    """A Dockerfile ``ENV`` instruction setting ``env`` verbatim (no ``$`` substitution)."""

    def quoted(value: str) -> str:
        for char in ("\\", '"', "$"):
            value = value.replace(char, "\\" + char)
        return f'"{value}"'

    return "ENV " + " \\\n    ".join(f"{k}={quoted(v)}" for k, v in env.items())


def host_cpu(cpuinfo: str) -> tuple[str, set[str]]:
    """Vendor and flags (``flags`` and ``vmx flags``) of the first processor in ``cpuinfo``."""
    vendor, flags = "", set[str]()
    for line in cpuinfo.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "vendor_id":
            vendor = value.strip()
        elif key in ("flags", "vmx flags"):
            flags.update(value.split())
    return vendor, flags


def restore_contract(env: dict[str, str], accelerator: str, cpuinfo: str) -> dict[str, str]:
    """The ``vdsm-ci.restore.*`` labels: what a host needs to restore the snapshot.

    ``cpuinfo``: the build host's ``/proc/cpuinfo`` (the vendor and flags a KVM snapshot's guest
    saw; restore-check.sh refuses another for a KVM image).
    """
    vendor, flags = host_cpu(cpuinfo)
    run = []
    network = env.get("NETWORK", "Y")
    # virtual-dsm v7.41 src/network.sh: NAT unless NETWORK is N or user (DHCP=Y: macvtap)
    if network[:1] not in ("N", "n") and not network.lower().startswith("user"):
        if env.get("DHCP", "N")[:1] not in ("Y", "y", "1"):
            run.append("--device /dev/net/tun")
        run.append("--cap-add NET_ADMIN")
    if accelerator == "kvm":
        run.append("--device /dev/kvm")
    return {
        L.RESTORE_RUN: " ".join(run),
        L.RESTORE_CPU_CORES: env.get("CPU_CORES", ""),
        L.RESTORE_RAM_SIZE: env.get("RAM_SIZE", ""),
        L.RESTORE_CPU_VENDOR: vendor,
        L.RESTORE_CPU_FLAGS: " ".join(sorted(flags.intersection(KVM_CPU_FLAGS))),
    }


def restore_conf(env: dict[str, str], contract: dict[str, str]) -> str:
    """``restore.conf`` for restore-check.sh: the VM's variables and the build host's CPU."""
    lines = [f"RESTORE_ENV_NAMES={shlex.quote(' '.join(env))}"]
    lines += [f"RESTORE_ENV_{k}={shlex.quote(v)}" for k, v in env.items()]
    lines.append(f"RESTORE_CPU_VENDOR={shlex.quote(contract[L.RESTORE_CPU_VENDOR])}")
    lines.append(f"RESTORE_CPU_FLAGS={shlex.quote(contract[L.RESTORE_CPU_FLAGS])}")
    return "\n".join(lines) + "\n"


def base_entry(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The base image's ENTRYPOINT and CMD (its ``Config``), run after the restore check."""
    entry = [str(a) for a in config.get("Entrypoint") or []]
    cmd = [str(a) for a in config.get("Cmd") or []]
    if (not entry and not cmd) or any("\n" in a for a in entry + cmd):
        raise VdsmError(
            f"the build base's entry point {entry!r} {cmd!r} cannot be wrapped by the final "
            "image's restore check (none, or an argument with a line break): fix the base image"
        )
    return entry, cmd


def flatten(ctx: StageContext) -> FlattenResult:
    """Build the candidate final image from the ``final`` checkpoint (see :func:`promote`)."""
    started = time.monotonic()
    client, params, state = ctx.client, ctx.params, ctx.state
    checkpoint = state.checkpoints["final"]
    accelerator = state.accelerator or "tcg"
    fp = state.fingerprints["image"]
    tag = candidate_tag(params, accelerator, fp)
    env = final_env(params, accelerator)
    contract = restore_contract(env, accelerator, Path("/proc/cpuinfo").read_text())
    base = get_image(client, state.base_image or "")
    if base is None:
        raise VdsmError(f"the build base {state.base_image!r} is gone: run the prepare stage")
    entry, cmd = base_entry(base.attrs["Config"])
    health = (
        f"HEALTH_USER={urllib.parse.quote(params.admin.user, safe='')}\n"
        f"HEALTH_PASSWORD={urllib.parse.quote(params.admin.password, safe='')}\n"
        f"GUEST_ADDRESS={params.base.guest_address}\n"
        # the stage context's timeouts are this accelerator's (StageContext)
        f"HEALTH_TIMEOUT={params.timeouts.for_accelerator(accelerator).health:g}\n"
    )
    instruction = env_instruction(image_env(params, accelerator))
    dockerfile, found = VM_ENV_LINE.subn(
        lambda _: instruction, project_file("Dockerfile.flatten").read_text()
    )
    if found != 1:
        raise VdsmError("Dockerfile.flatten lacks its `# vdsm-ci:vm-env` line: restore it")
    with tempfile.TemporaryDirectory(prefix="vdsm-ci-flatten-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(dockerfile)
        for name in IMAGE_ASSET_FILES:
            shutil.copy(ASSETS / name, Path(tmp) / name)
        (Path(tmp) / "health.conf").write_text(health)
        (Path(tmp) / "restore.conf").write_text(restore_conf(env, contract))
        (Path(tmp) / "entrypoint").write_text("".join(f"{a}\n" for a in entry))
        (Path(tmp) / "cmd").write_text("".join(f"{a}\n" for a in cmd))
        image = build_image(
            client,
            Path(tmp),
            dockerfile="Dockerfile",
            tag=tag,
            buildargs={
                "BASE": state.base_image or "",
                "CHECKPOINT": checkpoint,
                # its intermediate images are the run's (the janitor of a killed run removes them)
                "RUN_ID": state.run_id,
                "PROCESS": L.process_label(),
            },
            labels={**candidate_labels(params, accelerator, state.qemu_version or ""), **contract},
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
    tags[0] = free_pinned_tag(ctx, tags[0])
    with tempfile.TemporaryDirectory(prefix="vdsm-ci-promote-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(f"FROM {state.candidate}\n")
        image = build_image(
            client,
            Path(tmp),
            dockerfile="Dockerfile",
            tag=tags[0],
            labels={L.FINGERPRINT: fp, L.STAGE: "image", L.BUILT_BY: state.run_id},
        )
    # by content: a copy of this image (docker commit, FROM) has another ID and no record
    record_smoke_passed(str(image.id), state.run_id, fp, tags)
    for tag in tags[1:]:
        repo, _, name = tag.rpartition(":")
        image.tag(repo, name)
    remove_image(client, state.candidate)
    state.candidate = None
    state.tags = tags
    state.final_image_id = str(image.id)
    ctx.save()
    return tags


def free_pinned_tag(ctx: StageContext, pinned: str) -> str:
    """``pinned``, or ``pinned-2``, ``-3``...: the first that names no image a smoke test
    passed. A pinned tag never moves off a promoted image: a rebuild of the same fingerprint
    (``no_cache``) gets the next number. An image no smoke test passed (a copy given our tag)
    does not hold a pinned tag."""
    for number in range(1, 1000):
        tag = pinned if number == 1 else f"{pinned}-{number}"
        image = get_image(ctx.client, tag)
        if image is None or smoke_passed(str(image.id)) is None:
            return tag
    raise VdsmError(f"{pinned}: 999 rebuilds are tagged already: remove old ones (docker rmi)")


async def stage_flatten(ctx: StageContext) -> StageOutcome:
    """Clean base + configured disks -> the final image, tagged."""
    result = await asyncio.to_thread(flatten, ctx)
    return StageOutcome(
        detail=f"{result.image} ({result.size_after / 1e6:.0f} MB, was "
        f"{result.size_before / 1e6:.0f} MB before flattening)",
        facts=asdict(result),
    )
