"""Faults a build must end cleanly under: SIGTERM (a cancelled CI job), an out_dir that cannot
be written, papermill parameters the notebook does not take."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import papermill
import pytest
from vdsm_sim.image.build import ensure_sim_image

from tests.integration.conftest import TEST_REPOSITORY
from tests.integration.test_bad_input import VDSM, containers_created, error_lines, vdsm
from tests.poll import poll
from vdsmlib.checkpoints.vm import QMP_DIR_IN_CONTAINER
from vdsmlib.docker import labels as L
from vdsmlib.docker.network import build_network, network_name, remove_network
from vdsmlib.pipeline.preflight import OUT_DIR_BYTES
from vdsmlib.readiness import NotReady, ReadinessTimeout

ROOT = Path(__file__).parents[2]


def _run_containers(
    client: docker.DockerClient, run_id: str
) -> list[docker.models.containers.Container]:
    filters = {"label": [f"{L.OWNER}={L.OWNER_VALUE}", f"{L.RUN_ID}={run_id}"]}
    return list(client.containers.list(all=True, filters=filters))


def _wait_for_stage_vm(
    client: docker.DockerClient, out: Path, proc: subprocess.Popen[str]
) -> tuple[str, docker.models.containers.Container]:
    """The run id and the stage VM's container, once one runs."""

    def stage_vm() -> tuple[str, docker.models.containers.Container]:
        folders = list(out.iterdir()) if out.exists() else []
        for run_id in [p.name for p in folders if p.is_dir() and not p.is_symlink()]:
            running = [c for c in _run_containers(client, run_id) if c.status == "running"]
            stage = [c for c in running if c.labels.get(L.KIND) == "stage-container"]
            if stage:
                return run_id, stage[0]
        raise NotReady("no stage VM runs yet")

    try:
        return poll(
            stage_vm,
            what="a stage VM of the build",
            timeout=600,
            interval=1,
            alive=lambda: None if proc.poll() is None else f"the build exited {proc.returncode}",
        )
    except ReadinessTimeout as err:
        _, stderr = proc.communicate(timeout=60) if proc.poll() is not None else ("", "")
        raise AssertionError(f"no stage VM ever ran ({err}): {stderr[-2000:]}") from err


def _qmp_dirs(container: docker.models.containers.Container) -> list[str]:
    return [
        m["Source"]
        for m in container.attrs.get("Mounts", [])
        if m.get("Destination") == QMP_DIR_IN_CONTAINER
    ]


def _assert_cancelled_cleanly(
    client: docker.DockerClient, out: Path, run_id: str, qmp_dirs: list[str]
) -> None:
    assert _run_containers(client, run_id) == []
    assert client.networks.list(names=[network_name(run_id)]) == []
    assert qmp_dirs and not any(Path(d).exists() for d in qmp_dirs), qmp_dirs
    record = json.loads((out / run_id / "result.json").read_text())
    assert record["status"] == "failed"
    assert "terminated by SIGTERM" in record["error"], record["error"]
    assert not [s for s in record["stages"] if s["status"] == "running"], record["stages"]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != L.PROCESS_ENV}
    return {**env, "PYTHONPATH": str(ROOT)}


def _start_build(out: Path, repository: str) -> subprocess.Popen[str]:
    """`vdsm build sim --no-cache` in a process of its own, as a user (or a CI job) runs it."""
    return subprocess.Popen(
        [
            *VDSM,
            "build",
            "sim",
            "--no-cache",
            "--out",
            str(out),
            "-p",
            f"image_repository={repository}",
        ],
        cwd=ROOT,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.docker
@pytest.mark.slow
def test_sigterm_to_a_running_build_removes_its_containers_and_records_failed(
    client: docker.DockerClient, sim_image: str, tmp_path: Path
) -> None:
    """What a cancelled CI job does: SIGTERM to `vdsm build` while a stage VM runs."""
    out = tmp_path / "out"
    # a repository of its own: the build lock is per image, so it does not wait for the
    # session's builds of the same target
    repository = f"{TEST_REPOSITORY}-sigterm"
    proc = _start_build(out, repository)
    with _until_its_stage_vm(client, out, proc, repository) as (run_id, vm):
        qmp_dirs = _qmp_dirs(vm)
        # the stage VM is on its build's network only, not on Docker's default bridge
        assert set(vm.attrs["NetworkSettings"]["Networks"]) == {network_name(run_id)}
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 143, stderr[-2000:]
    assert error_lines(stderr)[-1] == (
        "vdsm: terminated (SIGTERM); containers of this run were removed"
    ), stderr[-2000:]
    _assert_cancelled_cleanly(client, out, run_id, qmp_dirs)


@contextlib.contextmanager
def _notebook_build(
    client: docker.DockerClient, out: Path, tmp_path: Path, name: str
) -> Iterator[tuple[subprocess.Popen[str], str, docker.models.containers.Container]]:
    """`papermill notebooks/build.ipynb` (no cache, stages inline) as a CI job runs it, in a
    repository of its own: (the papermill process, the run id, its stage VM) once that runs.
    Afterwards the process is gone and the repository's images too."""
    repository = f"{TEST_REPOSITORY}-{name}"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "papermill"),
            str(ROOT / "notebooks" / "build.ipynb"),
            str(tmp_path / "build.ipynb"),
            *("-p", "no_cache", "True", "-p", "executor", "inline"),
            *("-p", "out_dir", str(out), "-p", "image_repository", repository),
        ],
        cwd=ROOT / "notebooks",
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with _until_its_stage_vm(client, out, proc, repository) as (run_id, vm):
        yield proc, run_id, vm


@contextlib.contextmanager
def _until_its_stage_vm(
    client: docker.DockerClient, out: Path, proc: subprocess.Popen[str], repository: str
) -> Iterator[tuple[str, docker.models.containers.Container]]:
    """(run id, stage VM) of the build ``proc`` runs, once the VM runs; afterwards the process
    is gone and the images of ``repository`` too."""
    try:
        yield _wait_for_stage_vm(client, out, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for image in client.images.list(name=repository):
            client.images.remove(image.id, force=True)


@pytest.mark.docker
@pytest.mark.slow
def test_sigterm_to_papermill_alone_leaves_nothing_running(
    client: docker.DockerClient, sim_image: str, tmp_path: Path
) -> None:
    """SIGTERM to the papermill process only: its kernel sees its parent gone and exits on the
    spot (ipykernel's parent poller, os._exit), with no chance to clean up; the build's janitor
    (vdsmlib.pipeline.janitor) removes the run's VM, network and QMP folder and records why."""
    out = tmp_path / "out"
    with _notebook_build(client, out, tmp_path, "sigterm-papermill") as (proc, run_id, vm):
        qmp_dirs = _qmp_dirs(vm)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        # the janitor records the run failed last, after removing everything
        record_file = out / run_id / "result.json"

        def recorded() -> None:
            if json.loads(record_file.read_text())["status"] == "running":
                raise NotReady("the record still says running")

        with contextlib.suppress(ReadinessTimeout):  # the checks below say what is left
            poll(recorded, what="the janitor's record", timeout=60)
    log_file = out / run_id / "janitor.log"
    janitor_log = log_file.read_text() if log_file.exists() else "(no janitor.log)"
    assert _run_containers(client, run_id) == [], janitor_log
    assert client.networks.list(names=[network_name(run_id)]) == []
    assert qmp_dirs and not any(Path(d).exists() for d in qmp_dirs), qmp_dirs
    record = json.loads((out / run_id / "result.json").read_text())
    assert record["status"] == "failed"
    assert "ended without finishing" in record["error"], record["error"]
    assert "cleaning up" in janitor_log


@pytest.mark.docker
@pytest.mark.slow
def test_sigterm_to_the_build_notebooks_kernel_cancels_the_build(
    client: docker.DockerClient, sim_image: str, tmp_path: Path
) -> None:
    """`papermill build.ipynb`: the kernel that runs the build gets SIGTERM (a job runner that
    ends every process, or jupyter_client shutting the kernel down)."""
    out = tmp_path / "out"
    with _notebook_build(client, out, tmp_path, "sigterm-nb") as (proc, run_id, vm):
        qmp_dirs = _qmp_dirs(vm)
        # the kernel is the build's process: its pid is in the VM's labels
        kernel_pid = int(vm.labels[L.PROCESS].rpartition(":")[2])
        assert kernel_pid != proc.pid
        os.kill(kernel_pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=180)
    assert proc.returncode != 0, stderr[-2000:]
    _assert_cancelled_cleanly(client, out, run_id, qmp_dirs)


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``path`` with ``options`` (size, ro) for the test's lifetime."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def tiny_out(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: what a full disk under out_dir looks like."""
    with _tmpfs(tmp_path / "tiny", "size=64k") as mount:
        yield mount


@pytest.fixture
def read_only_out(tmp_path: Path) -> Iterator[Path]:
    with _tmpfs(tmp_path / "ro", "ro,size=512m") as mount:
        yield mount


@pytest.fixture
def small_out(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs just big enough for the preflight, to be filled up during the build."""
    with _tmpfs(tmp_path / "small", f"size={OUT_DIR_BYTES + 16_000_000}") as mount:
        yield mount


@pytest.mark.needs_root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root; .ci/run runs it as root")
@pytest.mark.docker
@pytest.mark.slow
def test_disk_full_during_the_build_is_one_line_and_a_failed_record(
    client: docker.DockerClient, sim_image: str, small_out: Path
) -> None:
    out = small_out / "out"
    repository = f"{TEST_REPOSITORY}-full"
    proc = _start_build(out, repository)
    with _until_its_stage_vm(client, out, proc, repository) as (run_id, _):
        # the disk fills up while the stage VM runs
        with contextlib.suppress(OSError), (small_out / "filler").open("wb") as filler:
            while True:
                filler.write(bytes(1 << 20))
        _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr[-2000:]
    line = error_lines(stderr)[-1]
    assert str(small_out) in line and "No space left on device" in line, stderr[-3000:]
    assert "free space there, or choose another out_dir" in line, line
    assert _run_containers(client, run_id) == []
    record = json.loads((out / run_id / "result.json").read_text())
    assert record["status"] == "failed"
    assert "No space left on device" in record["error"], record["error"]


@pytest.mark.needs_root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root; .ci/run runs it as root")
@pytest.mark.docker
def test_full_out_dir_is_one_line_before_any_container(
    client: docker.DockerClient, tiny_out: Path
) -> None:
    out = tiny_out / "out"
    with containers_created(client, out) as created:
        result = vdsm("build", "--out", str(out))
    assert result.returncode == 1, result.stderr
    (line,) = error_lines(result.stderr)
    assert line.startswith(f"vdsm: too little free disk for the run folder in {out}")
    assert "pass another out_dir" in line
    assert created == []


@pytest.mark.needs_root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root; .ci/run runs it as root")
@pytest.mark.docker
def test_read_only_out_dir_is_one_line_before_any_container(
    client: docker.DockerClient, read_only_out: Path
) -> None:
    out = read_only_out / "out"
    with containers_created(client, out) as created:
        result = vdsm("build", "--out", str(out))
    assert result.returncode == 1, result.stderr
    (line,) = error_lines(result.stderr)
    assert line.startswith(f"vdsm: cannot write the run folder in {out}"), line
    assert "writable or pass another out_dir" in line
    assert created == []


@pytest.mark.docker
@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"admin_pasword": "S3cure-Passw0rd!"}, "unknown parameter(s) admin_pasword"),
        ({"no_cache": "maybe"}, "no_cache must be true or false, got 'maybe'"),
        ({"image_repository": "Not/A:Repo"}, "is not a Docker repository reference"),
    ],
    ids=["unknown", "boolean", "repository"],
)
def test_bad_papermill_parameters_start_nothing(
    client: docker.DockerClient, tmp_path: Path, parameters: dict[str, str], message: str
) -> None:
    out = tmp_path / "out"
    with (
        containers_created(client, out) as created,
        pytest.raises(papermill.PapermillExecutionError) as exc,
    ):
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "build.ipynb"),
            str(tmp_path / "build.ipynb"),
            parameters={"out_dir": str(out), **parameters},
            cwd=str(ROOT / "notebooks"),
            progress_bar=False,
        )
    assert exc.value.ename == "ParamsError", exc.value.evalue
    assert message in exc.value.evalue
    assert "\n" not in exc.value.evalue
    assert created == []
    assert not out.exists() or not any(out.iterdir())


# the simulator image's python3 is minimal (no http, no urllib): plain sockets
_SERVE = (
    "import socket\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 5000))\n"
    "s.listen(8)\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')\n"
    "    c.close()\n"
)
_PROBE = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], 5000), timeout=3).close()\n"
    "    print('reached')\n"
    "except OSError as err:\n"
    "    print('unreachable', err)\n"
)


@pytest.mark.docker
def test_a_build_network_is_reachable_only_through_the_loopback_port(
    client: docker.DockerClient, sim_image: str
) -> None:
    """Stage VMs' network: the host reaches the published 127.0.0.1 port; a container on the
    default bridge, or on the same build network, does not reach the VM."""
    run_id = f"test-net-{os.getpid()}"
    # (again: on an engine shared with other checkouts, their simulator builds prune ours)
    sim_image = str(ensure_sim_image(client).ref)
    network = build_network(client, run_id)
    labels = L.owner_labels("test", run_id)
    try:
        _check_isolation(client, sim_image, network, labels)
    finally:
        remove_network(client, network)


def _check_isolation(
    client: docker.DockerClient, sim_image: str, network: str, labels: dict[str, str]
) -> None:
    server = client.containers.run(
        sim_image,
        entrypoint=["python3", "-c", _SERVE],
        detach=True,
        network=network,
        ports={"5000/tcp": ("127.0.0.1", None)},
        labels=labels,
    )
    try:
        server.reload()
        address = server.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        port = server.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}/"
        poll(
            lambda: urllib.request.urlopen(url, timeout=3).close(),
            what="the published port to answer",
            timeout=30,
            retryable=(OSError,),
        )
        for where in (None, network):  # default bridge, then the build network itself
            probe = client.containers.run(
                sim_image,
                entrypoint=["python3", "-c", _PROBE, address],
                network=where,
                labels=labels,
                remove=False,
                detach=True,
            )
            try:
                probe.wait(timeout=60)
                output = probe.logs().decode()
            finally:
                probe.remove(force=True)
            assert output.startswith("unreachable"), (where, output)
    finally:
        server.remove(force=True)
