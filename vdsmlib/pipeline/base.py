"""The prepare stage: the upstream image, the PAT, the build base, QEMU version, accelerator.

Where the upstream image comes from is a small registry keyed by ``base.source`` in params
(``sim-build`` builds the simulator locally, ``registry`` uses a pinned image), so the rest of the
pipeline never asks which target it builds.

:func:`look_up_base` is prepare that makes nothing: it reads the engine and the caches and
returns what prepare would return, or what is missing (a sentence): what ``Build.work_to_do``
reckons a no-op with. Example::

    found = look_up_base(client, params)
    if isinstance(found, str):
        print("work to do:", found)      # e.g. "the build base vdsm-ci/base:sim-1a2b is not there"
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import DockerException

from vdsmlib.checkpoints.fingerprints import files_digest, fingerprint
from vdsmlib.docker import labels as L
from vdsmlib.docker.engine import DockerError
from vdsmlib.docker.images import build_image, get_image, remove_image
from vdsmlib.params import Params
from vdsmlib.pat import PatSpec, cached_pat, fetch_pat
from vdsmlib.pipeline.context import StageContext
from vdsmlib.pipeline.plugins import BaseSource, base_source, kvm_probe_image
from vdsmlib.project import project_file
from vdsmlib.qemu.accel import probe_accelerator

__all__ = [
    "ASSETS",
    "PreparedBase",
    "build_base",
    "cache_dir",
    "look_up_base",
    "prepare_base",
]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
BASE_REPOSITORY = "vdsm-ci/base"


def cache_dir() -> Path:
    """``$VDSM_CI_CACHE`` or ``~/.cache/vdsm-ci``: PATs and the accelerator probe result."""
    path = Path(os.environ.get("VDSM_CI_CACHE", Path.home() / ".cache" / "vdsm-ci"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class PreparedBase:
    upstream_image: str
    upstream_id: str
    base_image: str
    base_id: str
    prepare_fingerprint: str
    qemu_version: str
    accelerator: str
    accelerator_reason: str
    built: bool
    detail: str
    pat_path: str | None = None
    pat_sha256: str | None = None


# -- upstream image sources (params: base.source) ---------------------------------------------


def _registry(client: docker.DockerClient, params: Params, *, make: bool = True) -> str | None:
    ref = params.base.image
    if get_image(client, ref) is None:
        if not make:
            return None
        log.info("pulling %s", ref)
        try:
            client.images.pull(ref)
        except DockerException as err:
            raise DockerError(
                f"cannot pull {ref}: {str(err).splitlines()[0][:200]} (pull it where a registry "
                "is reachable and `docker save | docker load` it here)"
            ) from err
    if "@sha256:" not in ref:
        log.warning(
            "base image %s is not pinned by digest: a new upstream release can change the build "
            "(pin it: vdsm pin %s)",
            ref,
            params.dsm_version,
        )
    return ref


#: built-in sources; others (``sim-build``) come from the ``vdsmlib.base_sources`` entry points
UPSTREAM_SOURCES: dict[str, BaseSource] = {
    "registry": _registry,
}


# -- the build base -----------------------------------------------------------------------------


def _qemu_version(client: docker.DockerClient, image: str) -> str:
    """``7.2.22``: the QEMU of ``image``, from ``qemu-system-x86_64 --version`` run inside it."""
    try:
        out = client.containers.run(
            image,
            entrypoint=["qemu-system-x86_64", "--version"],
            remove=True,
            labels=L.owner_labels("probe"),
        )
    except DockerException as err:
        raise DockerError(f"cannot run qemu-system-x86_64 --version in {image}: {err}") from err
    first = bytes(out).decode().splitlines()[0]
    return first.split("version", 1)[1].split()[0] if "version" in first else first


def _restore_config(
    client: docker.DockerClient, rebased: str, upstream: str, tag: str, labels: dict[str, str]
) -> str:
    """Give the rebased image the upstream image's ENV/CMD/WORKDIR back (not its VOLUME)."""
    config = client.images.get(upstream).attrs["Config"]
    changes = [
        f"ENV {k}={json.dumps(v)}" for k, v in (e.split("=", 1) for e in config["Env"] or [])
    ]
    if config.get("Cmd"):
        changes.append(f"CMD {json.dumps(config['Cmd'])}")
    if config.get("WorkingDir"):
        changes.append(f"WORKDIR {config['WorkingDir']}")
    # (docker commit accepts no STOPSIGNAL; virtual-dsm stops on the default SIGTERM anyway)
    changes += [f"LABEL {json.dumps(k)}={json.dumps(v)}" for k, v in labels.items()]
    container = client.api.create_container(rebased, labels=L.owner_labels("probe"))
    try:
        repo, _, tagname = tag.rpartition(":")
        result = client.api.commit(container["Id"], repository=repo, tag=tagname, changes=changes)
    finally:
        client.api.remove_container(container["Id"], force=True)
    return str(result["Id"])


def build_base(
    client: docker.DockerClient,
    upstream: str,
    patch_file: str,
    tag: str,
    *,
    labels: dict[str, str],
) -> str:
    """Build the build base of ``upstream`` (``Dockerfile``) as ``tag``; return its id.

    ``patch_file`` is the upstream script that attaches the boot and system disks. The image
    gets ``labels`` plus the QEMU version found inside it.
    """
    key = hashlib.sha256(f"{upstream}|{patch_file}|{tag}".encode()).hexdigest()[:12]
    rebased = f"{BASE_REPOSITORY}:rebased-{key}"
    with tempfile.TemporaryDirectory(prefix="vdsm-ci-base-") as tmp:
        shutil.copy(project_file("Dockerfile"), Path(tmp) / "Dockerfile")
        shutil.copy(ASSETS / "qcow2.sh", Path(tmp) / "qcow2.sh")
        build_image(
            client,
            Path(tmp),
            dockerfile="Dockerfile",
            tag=rebased,
            buildargs={"BASE": upstream, "PATCH_FILE": patch_file},
        )
    try:
        qemu_version = _qemu_version(client, rebased)
        return _restore_config(
            client, rebased, upstream, tag, {**labels, L.QEMU_VERSION: qemu_version}
        )
    finally:
        remove_image(client, rebased)


def _probe(
    client: docker.DockerClient, params: Params, *, make: bool = True
) -> tuple[str, str] | str:
    """``(accelerator, reason)``, or (``make=False``) what is missing to know it."""
    if params.vm.accelerator != "auto":
        return params.vm.accelerator, f"accelerator={params.vm.accelerator} from params"
    if not os.path.exists("/dev/kvm"):
        return "tcg", "/dev/kvm does not exist: using TCG (software emulation, about 10x slower)"
    probe = kvm_probe_image(client, make=make)
    if probe is None:
        return "the KVM probe image is not there yet"
    probe_image, probe_qemu = probe
    key = f"{platform.release()}|{probe_qemu}"
    cache = cache_dir() / "accelerator.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        accel, reason = known[key]
        return str(accel), f"{reason} (probed earlier on this kernel; delete {cache} to re-probe)"
    if not make:
        return f"the KVM probe result for this kernel ({cache}) is not there yet"
    result = probe_accelerator(client, probe_image, labels=L.owner_labels("probe"))
    known[key] = [result.accelerator, result.reason]
    cache.write_text(json.dumps(known, indent=2))
    return result.accelerator, result.reason


def known_accelerator(client: docker.DockerClient, params: Params) -> tuple[str, str] | str:
    """``(accelerator, reason)`` as far as it is known without probing (params, ``/dev/kvm``,
    the cached probe result for this kernel), else a sentence saying what is not known yet."""
    return _probe(client, params, make=False)


def prepare_base(ctx: StageContext) -> PreparedBase:
    """Everything before the first VM boots, made where missing; the run's state records it.
    Idempotent and cached by fingerprint."""
    found = _prepare(ctx.client, ctx.params, ctx.state.run_id, make=True)
    assert not isinstance(found, str), found  # make=True makes what is missing
    state = ctx.state
    state.upstream_image = found.upstream_image
    state.base_image = found.base_image
    state.qemu_version = found.qemu_version
    state.accelerator = found.accelerator
    state.accelerator_reason = found.accelerator_reason
    state.pat_path = found.pat_path
    ctx.save()
    return found


def look_up_base(client: docker.DockerClient, params: Params) -> PreparedBase | str:
    """What :func:`prepare_base` would find, making nothing (no build, pull, download or probe):
    the prepared base, or a sentence naming the first thing that is not there yet."""
    return _prepare(client, params, None, make=False)


def _prepare(
    client: docker.DockerClient, params: Params, run_id: str | None, *, make: bool
) -> PreparedBase | str:
    dockerfile = project_file("Dockerfile")
    upstream = base_source(params.base.source, UPSTREAM_SOURCES)(client, params, make=make)
    if upstream is None:
        return f"the upstream image of base.source {params.base.source} is not there yet"
    upstream_id = str(client.images.get(upstream).id)

    pat_path = pat_sha = None
    if params.pat is not None:
        spec = PatSpec(url=params.pat.url, size=params.pat.size, sha256=params.pat.sha256)
        pat = cached_pat(spec, cache_dir() / "pat")
        if pat is None:
            if not make:
                return f"the PAT {spec.url} is not downloaded yet"
            pat = fetch_pat(spec, cache_dir() / "pat", progress=True)
        pat_path, pat_sha = str(pat.path), pat.sha256

    fp = fingerprint(
        {
            "upstream_id": upstream_id,
            "patch_file": params.base.patch_file,
            "dockerfile": files_digest([dockerfile, ASSETS / "qcow2.sh"]),
        },
        previous="",
    )
    tag = f"{BASE_REPOSITORY}:{params.dsm_version}-{fp[:12]}"
    built = False
    existing = get_image(client, tag)
    if existing is None or existing.labels.get(L.FINGERPRINT) != fp:
        if not make:
            return f"the build base {tag} is not there yet"
        built = True
        build_base(
            client,
            upstream,
            params.base.patch_file,
            tag,
            labels=L.owner_labels("base", run_id, **{L.FINGERPRINT: fp, L.TARGET: params.target}),
        )
    base = client.images.get(tag)
    qemu_version = base.labels.get(L.QEMU_VERSION)
    if not qemu_version:
        if not make:
            return f"the QEMU version label of {tag} is not there yet"
        qemu_version = _qemu_version(client, tag)
    probed = _probe(client, params, make=make)
    if isinstance(probed, str):
        return probed
    accelerator, reason = probed
    if make:
        log.info("accelerator: %s (%s)", accelerator, reason)
    detail = (
        f"{'built' if built else 'reused'} {tag} from {upstream}; QEMU {qemu_version}; "
        f"{accelerator}: {reason}"
    )
    return PreparedBase(
        upstream_image=upstream,
        upstream_id=upstream_id,
        base_image=tag,
        base_id=str(base.id),
        prepare_fingerprint=fp,
        qemu_version=qemu_version,
        accelerator=accelerator,
        accelerator_reason=reason,
        built=built,
        detail=detail,
        pat_path=pat_path,
        pat_sha256=pat_sha,
    )
