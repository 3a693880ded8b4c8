"""Bad input: each gives one line that says what to do, and nothing is lost or left behind.

Nothing here runs a whole build: every case fails before the first VM starts (or, for the
snapshot case, starts one VM of the unpatched simulator image), so the module takes seconds.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import papermill
import pytest
import requests

from tests.integration.conftest import TEST_REPOSITORY, free_port
from tests.poll import poll
from vdsmlib.checkpoints.vm import CHECKPOINT_REPOSITORY, StageVm
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import get_image
from vdsmlib.params import load_params
from vdsmlib.qemu.errors import MigrationError

ROOT = Path(__file__).parents[2]
# `vdsm` as its console script runs it (vdsmlib.cli has no __main__; `-m vdsmlib.cli.main`
# would warn on stderr that the module was imported before it ran)
VDSM = [sys.executable, "-c", "import sys; from vdsmlib.cli import main; sys.exit(main())"]
# vdsm's log lines ("21:09:33 INFO    vdsmlib.x: ...") go to stderr too; errors are the rest.
_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING) +\S+: ")


def error_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not log lines."""
    return [line for line in stderr.splitlines() if line.strip() and not _LOG_LINE.match(line)]


def vdsm(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the ``vdsm`` command as a user would (a new process, its own environment)."""
    return subprocess.run(
        [*VDSM, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Created:
    id: str
    labels: dict[str, str]


@contextmanager
def containers_created(
    client: docker.DockerClient, out_dir: Path | None = None
) -> Iterator[list[Created]]:
    """Collect the vdsm-ci containers created inside the ``with`` block (from Docker's events).

    Containers of other builds that run at the same time (a run id whose folder is not in
    ``out_dir``) are left out; everything else created in the window counts.
    """
    created: list[Created] = []
    since = time.time() - 0.5
    yield created
    until = time.time() + 1.0
    events = client.events(
        since=since,
        until=until,
        decode=True,
        filters={"type": "container", "event": "create", "label": f"{L.OWNER}={L.OWNER_VALUE}"},
    )
    for event in events:
        labels = dict(event.get("Actor", {}).get("Attributes", {}))
        run_id = labels.get(L.RUN_ID)
        if run_id and (out_dir is None or not (out_dir / run_id).exists()):
            continue  # another build's container
        created.append(Created(event["Actor"]["ID"], labels))


# -- parameters: rejected before anything starts -------------------------------------------------


@pytest.mark.docker
def test_weak_password_through_papermill_starts_nothing(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    started = time.monotonic()
    with (
        containers_created(client, out) as created,
        pytest.raises(papermill.PapermillExecutionError) as exc,
    ):
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "build.ipynb"),
            str(tmp_path / "build.ipynb"),
            parameters={
                "admin_password": "abc",
                "out_dir": str(out),
                "image_repository": TEST_REPOSITORY,
            },
            cwd=str(ROOT / "notebooks"),
            progress_bar=False,
        )
    seconds = time.monotonic() - started
    err = exc.value
    assert err.ename == "ParamsError"
    assert "DSM would reject the admin account" in err.evalue
    assert "The password must contain at least 8 characters" in err.evalue
    assert "fix admin_user / admin_password" in err.evalue  # what to do
    assert "\n" not in err.evalue
    assert created == []
    assert not out.exists() or not any(out.iterdir())  # no run folder: no build started
    assert seconds < 60  # the kernel's start, not a boot


@pytest.mark.docker
def test_unknown_version_through_papermill(client: docker.DockerClient, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with (
        containers_created(client, out) as created,
        pytest.raises(papermill.PapermillExecutionError) as exc,
    ):
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "build.ipynb"),
            str(tmp_path / "build.ipynb"),
            # what `papermill -p dsm_version 7.9` delivers: a float
            parameters={"dsm_version": 7.9, "out_dir": str(out)},
            cwd=str(ROOT / "notebooks"),
            progress_bar=False,
        )
    assert exc.value.ename == "ParamsError"
    evalue = exc.value.evalue
    assert "unknown dsm_version '7.9'" in evalue and "known: " in evalue and "sim" in evalue
    assert "\n" not in evalue
    # the cell's error is the one line, not a traceback through vdsmlib
    assert exc.value.traceback == [f"ParamsError: {evalue}"]
    assert created == []


def test_plain_papermill_cli_ends_in_the_notebooks_one_line(tmp_path: Path) -> None:
    """``papermill notebooks/build.ipynb OUT -p dsm_version 7.9``: exit 1, and the last lines are
    papermill's "Exception encountered" and the notebook's one line. papermill 2.7's CLI does
    not catch PapermillExecutionError (papermill/cli.py), so Python prints papermill's own
    frames above them; ``make build`` / ``python -m vdsmlib.cli.make`` print the line alone."""
    papermill_cli = Path(sys.executable).parent / "papermill"
    result = subprocess.run(
        [str(papermill_cli), str(ROOT / "notebooks" / "build.ipynb"), str(tmp_path / "b.ipynb"),
         "-p", "dsm_version", "7.9", "-p", "out_dir", str(tmp_path / "out"),
         "--cwd", str(ROOT / "notebooks"), "--no-progress-bar"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert re.fullmatch(r'Exception encountered at "In \[\d+\]":', lines[-2]), lines
    assert lines[-1].startswith("ParamsError: unknown dsm_version '7.9'"), lines
    assert not (tmp_path / "out").exists()


def test_unknown_version_on_the_cli_is_exit_2_with_one_line(tmp_path: Path) -> None:
    result = vdsm("build", "7.9", "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == error_lines(result.stderr)  # no log lines either
    (line,) = error_lines(result.stderr)
    assert line.startswith("vdsm: unknown dsm_version '7.9'") and "known: " in line
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


# -- the machine: Docker, disk, ports -------------------------------------------------------------


def test_docker_not_running_is_exit_1_with_one_line(tmp_path: Path) -> None:
    result = vdsm(
        "build", "--out", str(tmp_path / "out"), env={"DOCKER_HOST": "unix:///nonexistent.sock"}
    )
    assert result.returncode == 1, result.stderr
    (line,) = error_lines(result.stderr)
    assert line.startswith("vdsm: Docker is not running")
    assert "dockerd" in line and "DOCKER_HOST" in line  # how to fix it
    assert not (tmp_path / "out").exists()


@pytest.mark.docker
def test_too_little_disk_is_exit_1_with_one_line(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with containers_created(client, out) as created:
        result = vdsm("build", "--out", str(out), env={"VDSM_CI_MIN_FREE_GB": "100000"})
    assert result.returncode == 1, result.stderr
    (line,) = error_lines(result.stderr)
    assert line.startswith("vdsm: too little free disk for Docker")
    assert "100000.0 GB needed" in line and "vdsm clean" in line
    assert created == []
    assert not out.exists()


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A host port on 127.0.0.1 that something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def _sim_run_containers(
    client: docker.DockerClient, port: int
) -> list[docker.models.containers.Container]:
    """`vdsm sim run` containers that asked for ``port`` (other tests' ones ask for others)."""
    found = []
    for container in client.containers.list(
        all=True, filters={"label": [f"{L.OWNER}={L.OWNER_VALUE}", f"{L.KIND}=sim-run"]}
    ):
        bindings = container.attrs["HostConfig"].get("PortBindings") or {}
        ports = {b.get("HostPort") for b in bindings.get("5000/tcp") or []}
        if str(port) in ports:
            found.append(container)
    return found


@pytest.mark.docker
def test_sim_run_on_a_busy_port_fails_with_one_line_and_leaves_no_container(
    client: docker.DockerClient, sim_image: str, busy_port: int
) -> None:
    try:
        result = vdsm("sim", "run", "--port", str(busy_port))
        assert result.returncode == 1, result.stderr
        (line,) = error_lines(result.stderr)
        assert line.startswith(f"vdsm: cannot start {sim_image} on 127.0.0.1:{busy_port}")
        assert "address already in use" in line and "choose another with --port" in line
        assert result.stdout == ""
        left = _sim_run_containers(client, busy_port)
        assert left == [], [f"{c.short_id} {c.status}" for c in left]
    finally:
        for container in _sim_run_containers(client, busy_port):
            container.remove(force=True, v=True)


@pytest.mark.docker
def test_sim_run_on_a_free_port_works_and_prints_the_container_id(
    client: docker.DockerClient, sim_image: str
) -> None:
    port = free_port()
    result = vdsm("sim", "run", "--port", str(port))
    try:
        assert result.returncode == 0, result.stderr
        assert error_lines(result.stderr) == []
        lines = result.stdout.strip().splitlines()
        assert f"http://127.0.0.1:{port}/" in lines[0]
        container = client.containers.get(lines[-1])  # the id, last
        assert container.id == lines[-1]
        assert container.labels[L.KIND] == "sim-run"
        assert container.image.id == client.images.get(sim_image).id
        # NAT like params/sim.yaml's run options, and port 5000 answers (the wait page while
        # the simulator installs, then DSM through the container's eth0)
        assert container.attrs["HostConfig"]["CapAdd"] == ["NET_ADMIN"]
        status = poll(
            lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=2).status_code,
            what=f"port {port} to answer",
            timeout=90,
            interval=0.2,
            retryable=(requests.RequestException,),
            describe=lambda: container.logs(tail=20).decode(errors="replace"),
        )
        assert status == 200, container.logs(tail=20).decode(errors="replace")
    finally:
        for container in _sim_run_containers(client, port):
            container.remove(force=True, v=True)
    assert _sim_run_containers(client, port) == []


# -- a checkpoint of raw disks ------------------------------------------------------------------


@pytest.mark.docker
async def test_checkpoint_of_raw_disks_is_refused_and_never_tagged(
    client: docker.DockerClient, sim_image: str
) -> None:
    """The unpatched simulator image attaches boot and system disks raw: the checkpoint is
    refused before the migration (a layer would store a raw disk whole)."""
    run_id = "test-raw-" + secrets.token_hex(3)
    tag = f"test-raw-{secrets.token_hex(3)}"
    params = load_params("sim")
    vm = StageVm.start(client, sim_image, params, accelerator="tcg", run_id=run_id, stage="boot")
    try:
        await vm.wait_api(60)
        with pytest.raises(MigrationError) as exc:
            await vm.checkpoint(
                "bad",
                labels=L.owner_labels("checkpoint", run_id, **{L.STAGE: "bad"}),
                tag=tag,
                timeout=60,
            )
    finally:
        vm.close()
        vm.close()  # idempotent
    message = str(exc.value)
    assert "'bad'" in message
    assert "qcow2" in message and "disk" in message  # what to change
    assert get_image(client, f"{CHECKPOINT_REPOSITORY}:{tag}") is None
    labels = [f"{L.OWNER}={L.OWNER_VALUE}", f"{L.RUN_ID}={run_id}"]
    assert client.images.list(filters={"label": labels}) == []
    assert client.containers.list(all=True, filters={"label": labels}) == []
    assert not vm.qmp_dir.exists()
