"""Images and checkpoints through a real OCI registry (Debian's docker-registry, on loopback).

One build with ``cache_repository`` set serves every test here: it pushes its checkpoints;
`vdsm publish` pushes its final image; the image is pulled back by digest and logs in; and a
second build, whose engine has lost the checkpoints and the final image, pulls the `final`
checkpoint instead of booting. The builds use a simulator knob of their own, so their
fingerprints (and checkpoints) are theirs alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from tests.integration.conftest import Builds, free_port
from tests.poll import poll
from vdsmlib.checkpoints.cache import RECORD_LABEL, pull_checkpoint, record_tag
from vdsmlib.checkpoints.vm import CHECKPOINT_REPOSITORY
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images
from vdsmlib.docker.registry import RegistryError, pull, push
from vdsmlib.pipeline.base import cache_dir
from vdsmlib.pipeline.publish import publish, trust_pulled
from vdsmlib.pipeline.trust import smoke_passed, trusted_final
from vdsmlib.readiness import NotReady, ReadinessTimeout
from vdsmlib.testing import DsmContainer

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
#: a knob only these builds set: their fingerprints differ from every other test's
KNOBS = {"SIM_HOSTNAME": "registry-test"}
REPOSITORY = "vdsm-ci-test/registry"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real registry on 127.0.0.1 (Docker allows plain HTTP to loopback registries)."""
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.fail("docker-registry not found: apt-get install docker-registry", pytrace=False)
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    log = (root / "registry.log").open("w")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)

    def serves() -> None:
        status = requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code
        if status != 200:
            raise NotReady(f"/v2/ answers {status}")

    try:
        try:
            poll(
                serves,
                what="docker-registry",
                timeout=30,
                interval=0.2,
                retryable=(requests.RequestException,),
                alive=lambda: None if proc.poll() is None else f"it exited {proc.returncode}",
            )
        except ReadinessTimeout as err:
            pytest.fail(
                f"docker-registry did not start ({err}): {(root / 'registry.log').read_text()}"
            )
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def cached_build(builds: Builds, registry: str) -> Iterator[dict]:
    cache = f"{registry}/vdsm-ci-test/checkpoints"
    record = builds.build(
        "sim",
        {"sim_knobs": KNOBS, "cache_repository": cache, "image_repository": REPOSITORY},
        no_cache=True,
    )
    yield {"record": record, "cache": cache}
    for image in builds.client.images.list(name=REPOSITORY):
        with contextlib.suppress(docker.errors.APIError):
            builds.client.images.remove(image.id, force=True)


def _remove_local(client: docker.DockerClient, refs: list[str]) -> None:
    for ref in refs:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(ref, force=True)


def test_build_pushes_each_checkpoint(cached_build: dict) -> None:
    pushes = [t for t in cached_build["record"].cache if t["direction"] == "push"]
    assert [t["error"] for t in pushes] == ["", ""]
    assert sorted("-final-" in t["reference"] for t in pushes) == [False, True]
    assert any("-start-ready-" in t["reference"] for t in pushes)
    assert all(t["digest"].startswith("sha256:") and t["size_bytes"] > 0 for t in pushes)
    assert all(t["reference"].startswith(cached_build["cache"] + ":") for t in pushes)


def test_publish_pull_by_digest_start_login(
    cached_build: dict, registry: str, client: docker.DockerClient, builds: Builds
) -> None:
    record = cached_build["record"]
    target_repo = f"{registry}/vdsm-ci-test/published"
    result_json = builds.out_dir / record.run_id / "result.json"
    # the CLI, as a user runs it
    cli = subprocess.run(
        [
            str(Path(sys.executable).with_name("vdsm")),
            "publish",
            "sim",
            "--repository",
            target_repo,
            "--out",
            str(builds.out_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    # out/latest may point at another test's run; publish by the record of this build too
    outcome = publish(client, "sim", target_repo, record=result_json)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip().splitlines()[-1].startswith(f"{target_repo}@sha256:")
    assert outcome.digest.startswith("sha256:")
    assert {p.tag for p in outcome.pushed} == {t.rpartition(":")[2] for t in record.tags}
    published = json.loads(result_json.read_text())["published"]
    assert published[-1]["reference"] == outcome.reference

    # remove every local name of the pushed image, then pull it by digest
    _remove_local(client, [f"{target_repo}:{p.tag}" for p in outcome.pushed])
    image_id = pull(client, outcome.reference)
    assert image_id == record.image_id
    with DsmContainer(outcome.reference, startup_timeout=180) as dsm:
        user, password = dsm.credentials()
        assert user == "vdsm"
        with dsm.client() as api, api.login(user, password) as session:
            assert session.nfs_get()["enable_nfs"] is True
    _remove_local(client, [outcome.reference])


def test_a_pulled_final_image_is_trusted_by_the_record_beside_its_tag(
    cached_build: dict,
    registry: str,
    client: docker.DockerClient,
    builds: Builds,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`vdsm publish` pushes the checkpoint cache's record beside each tag. On an engine whose
    user has no smoke record of the image (another machine: a cache without `trust/`), the
    image pulled by tag is trusted by that record and the next build is a no-op on it; an image
    pushed over the tag, or one with no record beside it, is not trusted, in one line each."""
    run = cached_build["record"]
    overrides = {
        "sim_knobs": KNOBS,
        "cache_repository": cached_build["cache"],
        "image_repository": REPOSITORY,
    }
    repo = f"{registry}/vdsm-ci-test/trusted-final"
    outcome = publish(client, "sim", repo, record=builds.out_dir / run.run_id / "result.json")
    assert [r.startswith(f"{repo}@sha256:") for r in outcome.records] == [True] * len(
        outcome.pushed
    )
    tag = outcome.pushed[0].tag
    record_ref = f"{repo}:{record_tag(tag)}"
    recorded = json.loads(client.images.get(pull(client, record_ref)).labels[RECORD_LABEL])
    _remove_local(client, [record_ref])
    assert recorded["reference"] == f"{repo}:{tag}" and recorded["digest"] == outcome.digest
    assert (recorded["image_id"], recorded["run_id"]) == (run.image_id, run.run_id)
    assert recorded["fingerprint"] == run.fingerprint and recorded["stage"] == "image"

    # another machine: this user's cache holds no smoke record (the rest of it is kept)
    fresh = tmp_path / "cache"
    shutil.copytree(cache_dir(), fresh, ignore=shutil.ignore_patterns("trust"))
    monkeypatch.setenv("VDSM_CI_CACHE", str(fresh))
    _remove_local(client, [f"{repo}:{p.tag}" for p in outcome.pushed])
    assert smoke_passed(run.image_id) is None
    assert builds.start("sim", overrides).work_to_do() is not None
    assert pull(client, f"{repo}:{tag}") == run.image_id
    assert builds.start("sim", overrides).work_to_do() is None
    passed = smoke_passed(run.image_id)
    assert passed is not None and passed.run_id == run.run_id, passed
    assert f"{repo}@{outcome.digest}" in passed.published

    impostors = []
    try:
        # the same labels, another image, pushed over the tag; and one with no record at all
        for name, ref in (("over-the-tag", f"{repo}:{tag}"), ("unrecorded", f"{repo}-x:a")):
            dockerfile = f"FROM {run.image_id}\nLABEL vdsm-ci-test.impostor={name}\n"
            image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
            impostors.append(image.id)
            image.tag(*ref.rsplit(":", 1))
            push(client, ref)
        lines = trust_pulled(client, run.fingerprint)
        assert len(lines) == 2 and all("\n" not in line for line in lines), lines
        over, unrecorded = sorted(lines, key=lambda line: f"{repo}-x:a " in line)
        assert impostors[0].split(":")[1][:12] in over and "the tag was overwritten" in over
        assert impostors[1].split(":")[1][:12] in unrecorded and "no record" in unrecorded
        assert "pull one it published" in over and "pull one it published" in unrecorded
        assert [smoke_passed(i) for i in impostors] == [None, None]
        trusted = trusted_final(client, run.fingerprint).image
        assert trusted is not None and trusted.id == run.image_id
    finally:
        _remove_local(client, [f"{repo}:{tag}", f"{repo}-x:a", *impostors])


def test_next_build_pulls_the_checkpoint_instead_of_booting(
    cached_build: dict, builds: Builds, client: docker.DockerClient
) -> None:
    record = cached_build["record"]
    fingerprint = record.fingerprint
    assert fingerprint
    # this engine "is another machine": no checkpoint and no final image of this fingerprint
    mine = [
        *find_images(client, {L.KIND: "final", L.FINGERPRINT: fingerprint}),
        *[
            i
            for i in find_images(client, {L.KIND: "checkpoint", L.RUN_ID: record.run_id})
            if i.labels.get(L.STAGE) in ("start-ready", "final")
        ],
    ]
    assert mine
    for image in mine:
        client.images.remove(image.id, force=True)
    again = builds.build(
        "sim",
        {
            "sim_knobs": KNOBS,
            "cache_repository": cached_build["cache"],
            "image_repository": REPOSITORY,
        },
    )
    statuses = {s.name: s.status for s in again.stages}
    why = (statuses, again.plan, again.cache, again.fingerprint, fingerprint)
    assert statuses["boot"] == "resumed", why
    assert statuses["services"] == "resumed", statuses
    pulls = [t for t in again.cache if t["direction"] == "pull" and not t["error"]]
    assert len(pulls) == 1 and "-final-" in pulls[0]["reference"]
    assert pulls[0]["size_bytes"] > 0 and pulls[0]["seconds"] > 0
    assert again.status == "ok"


def test_a_pulled_checkpoint_is_trusted_by_the_record_beside_it(
    cached_build: dict, registry: str, client: docker.DockerClient
) -> None:
    """The push left a record beside the `final` checkpoint; a pull is accepted only when the
    image under the tag is the one recorded: an image with the same labels pushed over the tag,
    or the checkpoint under a tag with no record, is refused in one line and removed."""
    cache = cached_build["cache"]
    run = cached_build["record"]
    final = next(t for t in run.cache if t["direction"] == "push" and "-final-" in t["reference"])
    tag = final["reference"].rpartition(":")[2]
    record_ref = f"{cache}:{record_tag(tag)}"
    assert final["record"].startswith(f"{cache}@sha256:"), final

    genuine_id = pull(client, final["reference"])
    fingerprint = client.images.get(genuine_id).labels[L.FINGERPRINT]
    record_image = client.images.get(pull(client, record_ref))
    recorded = json.loads(record_image.labels[RECORD_LABEL])
    _remove_local(client, [record_ref])
    assert recorded == {
        "reference": final["reference"],
        "digest": final["digest"],
        "image_id": genuine_id,
        "stage": "final",
        "fingerprint": fingerprint,
        "run_id": run.run_id,
    }

    accepted = pull_checkpoint(client, cache, tag, fingerprint)
    assert accepted.error == "" and accepted.digest == final["digest"], accepted

    # the same labels, another image: pushed over the checkpoint's tag
    impostor_ref = "vdsm-ci-test/registry-impostor:latest"
    dockerfile = f"FROM {final['reference']}\nLABEL vdsm-ci-test.impostor=yes\n".encode()
    manifest_url = f"http://{registry}/v2/vdsm-ci-test/checkpoints/manifests"
    schema2 = "application/vnd.docker.distribution.manifest.v2+json"
    genuine_manifest = requests.get(
        f"{manifest_url}/{final['digest']}", headers={"Accept": schema2}, timeout=30
    )
    assert genuine_manifest.status_code == 200, genuine_manifest.text
    other_tag = f"{tag}-copy"
    try:
        impostor, _ = client.images.build(fileobj=io.BytesIO(dockerfile), tag=impostor_ref, rm=True)
        assert impostor.labels[L.FINGERPRINT] == fingerprint and impostor.id != genuine_id
        impostor.tag(cache, tag)
        push(client, f"{cache}:{tag}")
        refused = pull_checkpoint(client, cache, tag, fingerprint)
        assert refused.error.startswith(f"{cache}:{tag} refused: its digest"), refused
        assert "the tag was overwritten" in refused.error and "\n" not in refused.error
        # what it pulled is gone; the local checkpoint is still the genuine one
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(f"{cache}:{tag}")
        assert client.images.get(f"{CHECKPOINT_REPOSITORY}:{tag}").id == genuine_id

        # the genuine checkpoint under a tag no build recorded
        client.images.get(genuine_id).tag(cache, other_tag)
        push(client, f"{cache}:{other_tag}")
        unrecorded = pull_checkpoint(client, cache, other_tag, fingerprint)
        assert unrecorded.error.startswith(f"{cache}:{other_tag} refused: no record"), unrecorded
        assert "something else" in unrecorded.error and "\n" not in unrecorded.error
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(f"{CHECKPOINT_REPOSITORY}:{other_tag}")
    finally:
        # put the genuine manifest back under the tag
        put = requests.put(
            f"{manifest_url}/{tag}",
            data=genuine_manifest.content,
            headers={"Content-Type": schema2},
            timeout=30,
        )
        _remove_local(client, [impostor_ref, f"{cache}:{tag}", f"{cache}:{other_tag}"])
    assert put.status_code == 201, put.text
    again = pull_checkpoint(client, cache, tag, fingerprint)
    assert again.error == "" and again.digest == final["digest"], again


def test_push_to_a_closed_port_says_unreachable(
    client: docker.DockerClient, sim_image: str
) -> None:
    ref = f"127.0.0.1:{free_port()}/vdsm-ci-test/nowhere:x"
    client.images.get(sim_image).tag(ref)
    try:
        with pytest.raises(RegistryError) as err:
            push(client, ref)
        assert err.value.kind == "unreachable"
        assert "cannot be reached" in str(err.value) and "\n" not in str(err.value)
    finally:
        _remove_local(client, [ref])


def test_pull_of_a_missing_tag_says_not_found(client: docker.DockerClient, registry: str) -> None:
    with pytest.raises(RegistryError) as err:
        pull(client, f"{registry}/vdsm-ci-test/none:missing")
    assert err.value.kind == "not-found"
