"""The prepare stage: the upstream image, the PAT, the build base, QEMU version, accelerator.

Where the upstream image comes from is a small registry keyed by ``base.source`` in params
(``sim-build`` builds the simulator locally, ``registry`` uses a pinned image), so the rest of the
pipeline never asks which target it builds.

Under :func:`check_only` (what ``Build.run_if_noop`` sets) prepare computes the same state but
makes nothing: each place that would build, pull, download or probe calls :func:`making`
first, which then raises :class:`WorkToDo`. Example::

    with check_only():
        making("the build base vdsm-ci/base:sim-1a2b")   # raises WorkToDo
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import DockerException

from vdsmlib.checkpoints.fingerprints import files_digest, fingerprint
from vdsmlib.docker import labels as L
from vdsmlib.docker.engine import DockerError
from vdsmlib.docker.images import build_image, get_image, remove_image
from vdsmlib.errors import VdsmError
from vdsmlib.params import Params
from vdsmlib.pat import PatSpec, cached_pat, fetch_pat
from vdsmlib.pipeline.context import StageContext
from vdsmlib.pipeline.plugins import base_source, kvm_probe_image
from vdsmlib.project import project_file
from vdsmlib.qemu.accel import probe_accelerator

__all__ = [
    "ASSETS",
    "PreparedBase",
    "WorkToDo",
    "build_base",
    "cache_dir",
    "check_only",
    "making",
    "prepare_base",
]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
BASE_REPOSITORY = "vdsm-ci/base"

#: set while a no-op check runs: prepare may read the engine and the caches, and make nothing
_CHECK_ONLY: ContextVar[bool] = ContextVar("vdsm_check_only", default=False)


class WorkToDo(VdsmError):
    """A no-op check found work: something to build, pull, download or probe, or stages to run.

    Not a failure: the build (``Build.run``, the build notebook) does that work.
    """


@contextmanager
def check_only() -> Iterator[None]:
    """Within it (this thread, and threads started with ``asyncio.to_thread``), :func:`making`
    raises :class:`WorkToDo` instead of letting prepare make something."""
    token = _CHECK_ONLY.set(True)
    try:
        yield
    finally:
        _CHECK_ONLY.reset(token)


def making(what: str) -> None:
    """Say that the build is about to make ``what`` (prepare: an image, a download, a probe;
    the planner: a checkpoint pull); during a no-op check, raise WorkToDo instead."""
    if _CHECK_ONLY.get():
        raise WorkToDo(f"{what} is not there yet")


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


def _registry(client: docker.DockerClient, params: Params) -> str:
    ref = params.base.image
    if get_image(client, ref) is None:
        making(f"the upstream image {ref} (pull)")
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
UPSTREAM_SOURCES: dict[str, Callable[[docker.DockerClient, Params], str]] = {
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


def _probe(client: docker.DockerClient, params: Params) -> tuple[str, str]:
    if params.vm.accelerator != "auto":
        return params.vm.accelerator, f"accelerator={params.vm.accelerator} from params"
    if not os.path.exists("/dev/kvm"):
        return "tcg", "/dev/kvm does not exist: using TCG (software emulation, about 10x slower)"
    probe_image, probe_qemu = kvm_probe_image(client)
    key = f"{platform.release()}|{probe_qemu}"
    cache = cache_dir() / "accelerator.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        accel, reason = known[key]
        return str(accel), f"{reason} (probed earlier on this kernel; delete {cache} to re-probe)"
    making(f"the KVM probe result for this kernel ({cache})")
    result = probe_accelerator(client, probe_image, labels=L.owner_labels("probe"))
    known[key] = [result.accelerator, result.reason]
    cache.write_text(json.dumps(known, indent=2))
    return result.accelerator, result.reason


def prepare_base(ctx: StageContext) -> PreparedBase:
    """Everything before the first VM boots. Idempotent and cached by fingerprint."""
    client, params, state = ctx.client, ctx.params, ctx.state
    dockerfile = project_file("Dockerfile")
    upstream = base_source(params.base.source, UPSTREAM_SOURCES)(client, params)
    upstream_id = str(client.images.get(upstream).id)

    pat_path = pat_sha = None
    if params.pat is not None:
        spec = PatSpec(url=params.pat.url, size=params.pat.size, sha256=params.pat.sha256)
        pat = cached_pat(spec, cache_dir() / "pat")
        if pat is None:
            making(f"the PAT {spec.url} (download)")
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
        making(f"the build base {tag}")
        built = True
        build_base(
            client,
            upstream,
            params.base.patch_file,
            tag,
            labels=L.owner_labels(
                "base", state.run_id, **{L.FINGERPRINT: fp, L.TARGET: params.target}
            ),
        )
    base = client.images.get(tag)
    qemu_version = base.labels.get(L.QEMU_VERSION)
    if not qemu_version:
        making(f"the QEMU version label of {tag}")
        qemu_version = _qemu_version(client, tag)
    accelerator, reason = _probe(client, params)
    log.info("accelerator: %s (%s)", accelerator, reason)

    state.upstream_image = upstream
    state.base_image = tag
    state.qemu_version = qemu_version
    state.accelerator = accelerator
    state.accelerator_reason = reason
    state.pat_path = pat_path
    ctx.save()
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
