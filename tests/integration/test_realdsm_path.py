"""The real-DSM code path (``base.source: registry``, a PAT download) against local stand-ins.

Real DSM cannot run here and the tests never touch the internet, so a params folder in a temp
dir takes ``params/7.2.2.yaml`` and points it at stand-ins: the simulator image as the
"registry" base (it honours the virtual-dsm contract), and a fake few-MB ``.pat`` served by a
local HTTP server. Everything else is the real-DSM path: PAT fetched into the cache with its
record, mounted at ``/boot.pat`` for the first boot, never in an image; the Dockerfile's patch of
the base's disk script and its build-time check.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from vdsm_sim.image.build import UPSTREAMS, ensure_sim_image

from tests.integration.conftest import TEST_REPOSITORY, Builds
from tests.integration.test_registry import registry  # noqa: F401  (the registry fixture)
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images
from vdsmlib.docker.registry import push
from vdsmlib.params import load_params
from vdsmlib.pat import PatError
from vdsmlib.pipeline import StageError
from vdsmlib.pipeline.pin import pinned_params
from vdsmlib.readiness import NotReady, ReadinessAborted, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
PAT_NAME = "DSM_VirtualDSM_72806.pat"
PAT_SIZE = 3 * 1024 * 1024 + 17


@dataclass(frozen=True)
class PatServer:
    url: str  # of the fake PAT
    base: str  # of the server
    size: int
    sha256: str


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def pat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PatServer]:
    """A local HTTP server on 127.0.0.1 serving a fake PAT (random bytes, new every session)."""
    root = tmp_path_factory.mktemp("pat-server")
    data = os.urandom(PAT_SIZE)
    (root / PAT_NAME).write_bytes(data)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield PatServer(f"{base}/{PAT_NAME}", base, PAT_SIZE, hashlib.sha256(data).hexdigest())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated ``VDSM_CI_CACHE`` (PATs); the accelerator probe's result is carried over."""
    folder = tmp_path / "cache"
    folder.mkdir()
    probed = Path(os.environ.get("VDSM_CI_CACHE", Path.home() / ".cache" / "vdsm-ci"))
    if (probed / "accelerator.json").is_file():
        shutil.copy(probed / "accelerator.json", folder / "accelerator.json")
    monkeypatch.setenv("VDSM_CI_CACHE", str(folder))
    return folder


def realdsm_params(
    folder: Path, sim_image: str, pat: dict[str, Any], *, patch_file: str = "/run/disk.sh"
) -> Path:
    """``params/7.2.2.yaml`` with the base, VM, timeouts and PAT pointed at local stand-ins."""
    folder.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load((ROOT / "params" / "7.2.2.yaml").read_text())
    sim = yaml.safe_load((ROOT / "params" / "sim.yaml").read_text())
    data["base"] = {
        "source": "registry",
        "image": sim_image,
        "patch_file": patch_file,
        # the PAT is mounted at /boot.pat, so the disks are DSM_VirtualDSM.* (as on 7.41)
        "disk_base": "DSM_VirtualDSM",
        "qemu_version": data["base"]["qemu_version"],
    }
    data["vm"] = sim["vm"]
    data["timeouts"] = sim["timeouts"]
    data["pat"] = pat
    (folder / "7.2.2.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_registry_base_with_a_downloaded_pat_builds(
    builds: Builds,
    client: docker.DockerClient,
    sim_image: str,
    pat_server: PatServer,
    cache: Path,
    tmp_path: Path,
) -> None:
    pat = {"url": pat_server.url, "size": pat_server.size, "sha256": pat_server.sha256}
    params_dir = realdsm_params(tmp_path / "params", sim_image, pat)
    build = builds.start("7.2.2", params_dir=params_dir, executor="inline", no_cache=True)
    boot_mounts: list[dict[str, Any]] = []

    async def run_and_watch_boot() -> Any:
        task = asyncio.create_task(build.run())
        filters = {"label": [f"{L.RUN_ID}={build.run_id}", f"{L.STAGE}=boot"]}

        async def boot_vm_mounts(budget: float) -> list[dict[str, Any]]:
            containers = await asyncio.to_thread(client.containers.list, filters=filters)
            if not containers:
                raise NotReady("no boot stage VM runs yet")
            return [mount for c in containers for mount in c.attrs["Mounts"]]

        # A build that ends first never had a boot VM: asserted below, with its record.
        with contextlib.suppress(ReadinessAborted):
            mounts = await wait_for(
                boot_vm_mounts,
                what="the boot stage's VM",
                timeout=1800,
                alive=lambda: "the build ended" if task.done() else None,
            )
            boot_mounts.extend(mounts)
        return await task

    record = asyncio.run(run_and_watch_boot())

    statuses = {s.name: s.status for s in record.stages}
    assert record.status == "ok", record.error
    assert record.target == "dsm" and record.dsm_version == "7.2.2"
    assert statuses["prepare"] in ("ran", "skipped")
    assert {statuses[s] for s in list(statuses)[1:]} == {"ran"}, statuses
    # the PAT was downloaded into the cache, with its record
    cached = cache / "pat" / PAT_NAME
    assert sorted(files_in(cache / "pat")) == [PAT_NAME, f"{PAT_NAME}.json"]
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == pat_server.sha256
    note = json.loads((cache / "pat" / f"{PAT_NAME}.json").read_text())
    assert note["url"] == pat_server.url and note["size"] == pat_server.size
    assert note["sha256"] == pat_server.sha256
    # ... mounted at /boot.pat for the first boot
    pat_mounts = [m for m in boot_mounts if m["Destination"] == "/boot.pat"]
    assert boot_mounts, "the boot container was never seen"
    assert [Path(m["Source"]).resolve() for m in pat_mounts] == [cached.resolve()]
    # ... and never in an image: checkpoints declare no volume (a VOLUME /boot.pat committed
    # with start-ready made its restore fail), the final image's /storage holds no .pat
    checkpoints = find_images(client, {L.RUN_ID: build.run_id, L.KIND: "checkpoint"})
    assert {i.labels[L.STAGE] for i in checkpoints} == {"start-ready", "final"}
    for image in checkpoints:
        assert not image.attrs["Config"].get("Volumes"), image.tags
    assert record.image and record.image.startswith(f"{TEST_REPOSITORY}:7.2.2-72806-")
    listing = client.containers.run(
        record.image,
        entrypoint=["sh", "-c", "ls -a /storage; ls -a /boot.pat 2>&1 || true"],
        remove=True,
        labels=L.owner_labels("test", build.run_id),
    ).decode()
    assert "DSM_VirtualDSM.system.img" in listing, listing
    assert ".pat" not in listing.replace("/boot.pat", ""), listing
    assert "No such file" in listing  # no /boot.pat baked in either
    labels = client.images.get(record.image).labels
    assert labels[L.TARGET] == "dsm" and labels[L.DSM_VERSION] == "7.2.2"
    # the final image works: smoke started it fresh and logged in
    assert statuses["smoke"] == "ran" and record.restore_to_ready_seconds is not None
    assert builds.containers_of(build.run_id) == []


def test_newest_release_pinned_by_vdsm_pin_builds_against_its_twin(
    builds: Builds,
    client: docker.DockerClient,
    registry: str,  # noqa: F811
    pat_server: PatServer,
    cache: Path,
    tmp_path: Path,
) -> None:
    """A target following the newest virtual-dsm release, its params pinned as `vdsm pin`
    writes them from a registry (digest, /run/prepare.sh, VM_NET_IP), builds end to end; the
    simulator's twin of that release, pushed to a local registry, stands in for the upstream
    image. The final image keeps the pinned guest address (every params `env` goes into it)."""
    upstream = UPSTREAMS[-1]
    twin = ensure_sim_image(client, upstream=upstream)
    ref = f"{registry}/vdsm/virtual-dsm:{upstream}"
    client.images.get(twin.ref).tag(ref)
    try:
        digest = push(client, ref).digest
    finally:
        client.images.remove(ref)
    pat = {"url": pat_server.url, "size": pat_server.size, "sha256": pat_server.sha256}
    params_dir = realdsm_params(tmp_path / "params", ref, pat)
    path = params_dir / "7.2.2.yaml"
    assert client.images.get_registry_data(ref).id == digest  # what `vdsm pin` asks
    path.write_text(pinned_params(path.read_text(), ref, digest, "20.20.20.21", where=str(path)))
    pinned = yaml.safe_load(path.read_text())
    assert pinned["base"]["patch_file"] == "/run/prepare.sh"
    guest = load_params("7.2.2", params_dir=params_dir).base.guest_address
    assert pinned["env"]["VM_NET_IP"] == guest == "20.20.20.21"

    record = builds.build("7.2.2", params_dir=params_dir, no_cache=True)

    assert record.status == "ok", record.error
    statuses = {s.name: s.status for s in record.stages}
    assert statuses["smoke"] == "ran" and record.restore_to_ready_seconds is not None
    env = client.images.get(record.image).attrs["Config"]["Env"]
    assert "VM_NET_IP=20.20.20.21" in env, env
    labels = client.images.get(record.image).labels
    assert labels[L.TARGET] == "dsm"
    assert builds.containers_of(record.run_id) == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "HTTP 404"),
        ("size", "announces"),
        ("sha256", "has sha256"),
    ],
)
def test_bad_pat_fails_prepare_and_leaves_nothing(
    builds: Builds,
    sim_image: str,
    pat_server: PatServer,
    cache: Path,
    tmp_path: Path,
    case: str,
    expected: str,
) -> None:
    pat: dict[str, Any] = {"url": pat_server.url, "size": pat_server.size}
    if case == "missing":
        pat["url"] = f"{pat_server.base}/no/such/{PAT_NAME}"
    elif case == "size":
        pat["size"] = pat_server.size + 1
    else:
        pat["sha256"] = "0" * 64
    build = builds.start(
        "7.2.2", params_dir=realdsm_params(tmp_path / "params", sim_image, pat), no_cache=True
    )
    with pytest.raises(StageError) as exc:
        asyncio.run(build.run())
    err = exc.value
    assert err.stage == "prepare"
    assert isinstance(err.__cause__, PatError)
    message = str(err.__cause__)
    assert "\n" not in message and expected in message
    assert pat["url"] in message
    assert "params" in message  # what to check
    assert not (cache / "pat").exists() or files_in(cache / "pat") == []
    assert builds.containers_of(build.run_id) == []


@pytest.mark.parametrize(
    ("patch_file", "expected"),
    [("/run/entry.sh", "qcow2 patch did not apply"), ("/run/no-such.sh", "does not exist")],
    ids=["no-match", "missing"],
)
def test_base_whose_disk_script_does_not_patch_fails_prepare(
    builds: Builds,
    client: docker.DockerClient,
    sim_image: str,
    pat_server: PatServer,
    cache: Path,
    tmp_path: Path,
    patch_file: str,
    expected: str,
) -> None:
    pat = {"url": pat_server.url, "size": pat_server.size}
    params_dir = realdsm_params(tmp_path / "params", sim_image, pat, patch_file=patch_file)
    before = _base_tags(client)
    build = builds.start("7.2.2", params_dir=params_dir, no_cache=True)
    with pytest.raises(StageError) as exc:
        asyncio.run(build.run())
    assert exc.value.stage == "prepare"
    message = str(exc.value)
    assert expected in message and patch_file in message
    assert "base.patch_file" in message  # what to change
    new = _base_tags(client) - before
    assert new == set(), new
    assert not find_images(client, {L.RUN_ID: build.run_id})
    assert builds.containers_of(build.run_id) == []


def _base_tags(client: docker.DockerClient) -> set[str]:
    """Tags of ``vdsm-ci/base``, without those other builds (other run ids) made meanwhile."""
    tags = set()
    for image in client.images.list(name="vdsm-ci/base"):
        with contextlib.suppress(KeyError):
            if image.labels[L.KIND] == "base" and L.RUN_ID in image.labels:
                continue  # a finished base of some build: not ours (ours would fail)
        tags.update(image.tags)
    return tags
