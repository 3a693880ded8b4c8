"""`vdsm pin` against a real registry (Debian's docker-registry on loopback).

A small image stands in for each virtual-dsm release in the registry; the real CLI pins a copy
of the project's params to it. Pinning the newest release writes its digest, its patch file
(/run/prepare.sh from 7.63 on) and the guest address through VM_NET_IP (its NAT guest address
follows the container's otherwise, from 7.62 on); pinning 7.41 keeps /run/disk.sh.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests
import yaml

from tests.integration.test_registry import registry  # noqa: F401  (the registry fixture)
from vdsmlib.docker.registry import push
from vdsmlib.params import load_params

pytestmark = pytest.mark.docker

ROOT = Path(__file__).parents[2]
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    yield engine
    engine.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory holding a copy of the params (the CLI rewrites them in place)."""
    shutil.copytree(ROOT / "params", tmp_path / "params")
    (tmp_path / "notebooks").mkdir()
    for name in ("Dockerfile", "Dockerfile.flatten"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _release_image(
    client: docker.DockerClient, address: str, release: str, tmp_path: Path
) -> tuple[str, str]:
    """Push a one-file image as ``<registry>/vdsm/virtual-dsm:<release>``; (ref, digest)."""
    context = tmp_path / f"context-{release}"
    context.mkdir()
    (context / "release").write_text(release)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY release /release\n")
    ref = f"{address}/vdsm/virtual-dsm:{release}"
    image, _ = client.images.build(
        path=str(context),
        tag=ref,
        labels={"vdsm-ci.owner": "vdsm-ci", "vdsm-ci.kind": "test"},
        rm=True,  # docker-py keeps the build's intermediate containers by default
        forcerm=True,
    )
    try:
        pushed = push(client, ref)
    finally:
        client.images.remove(image.id, force=True)
    served = requests.head(
        f"http://{address}/v2/vdsm/virtual-dsm/manifests/{release}",
        headers={"Accept": MANIFEST},
        timeout=10,
    ).headers["Docker-Content-Digest"]
    assert pushed.digest == served
    return ref, served


def _pin(project: Path, target: str, image: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdsmlib.cli",
            "--project",
            str(project),
            "pin",
            target,
            "--image",
            image,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_pin_the_newest_release_and_7_41_from_a_registry(
    client: docker.DockerClient,
    registry: str,  # noqa: F811
    project: Path,
    tmp_path: Path,
) -> None:
    newest, newest_digest = _release_image(client, registry, "7.65", tmp_path)
    printed = _pin(project, "7.2.2", newest)
    assert newest_digest in printed
    params = load_params("7.2.2", params_dir=project / "params")
    assert params.base.image == f"{newest}@{newest_digest}"
    assert params.base.patch_file == "/run/prepare.sh"
    assert params.env["VM_NET_IP"] == params.base.guest_address == "20.20.20.21"

    old, old_digest = _release_image(client, registry, "7.41", tmp_path)
    _pin(project, "7.2.1", old)
    data = yaml.safe_load((project / "params" / "7.2.1.yaml").read_text())
    assert data["base"]["image"] == f"{old}@{old_digest}"
    assert data["base"]["patch_file"] == "/run/disk.sh"
    assert "VM_NET_IP" not in (data.get("env") or {})


def test_clean_removes_a_superseded_image_that_was_pushed(
    client: docker.DockerClient,
    registry: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """An untagged simulator image that was pushed (here to two repositories) is still named by
    its ``repo@digest`` references: Docker refuses to remove it by ID ("referenced in multiple
    repositories"). `vdsm clean` removes those names, then the image."""
    from vdsmlib.docker.images import clean

    run_id = f"test-clean-pushed-{tmp_path.name}"
    context = tmp_path / "context"
    context.mkdir()
    (context / "f").write_text(run_id)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    labels = {"vdsm-ci.owner": "vdsm-ci", "vdsm-ci.kind": "sim", "vdsm-ci.run-id": run_id}
    image, _ = client.images.build(path=str(context), labels=labels, rm=True, forcerm=True)
    refs = [f"{registry}/vdsm-ci/sim-a:x", f"{registry}/vdsm-ci/sim-b:x"]
    (context / "f").write_text(run_id + " rebuilt")
    newer, _ = client.images.build(path=str(context), labels=labels, rm=True, forcerm=True)
    try:
        for ref in refs:
            image.tag(ref)
            push(client, ref)
            newer.tag(ref)  # the tag moves, as a rebuild moves it: the old image keeps its digest
        assert len(client.images.get(image.id).attrs["RepoDigests"]) == 2
        report = clean(client, run_id=run_id)
        assert any(str(image.id) in line for line in report["images"]), report
        assert not report["kept"], report
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(image.id)
    finally:
        for ref in [*refs, image.id, newer.id]:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(ref, force=True)
