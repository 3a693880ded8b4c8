"""The ``vdsm`` command: arguments reach :class:`vdsmlib.pipeline.Build`, errors map to exit codes.

Like papermill's CLI tests, the library call is replaced by a recording fake (the CLI imports
``Build`` inside ``_cmd_build``, so patching ``vdsmlib.pipeline.Build`` is what it sees). The
``checkpoints`` and ``clean --dry-run`` commands run against the real Docker engine.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import socket
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import vdsmlib.pipeline.parameters
from vdsmlib.cli import main
from vdsmlib.docker import labels as L
from vdsmlib.errors import VdsmError
from vdsmlib.params import ParamsError
from vdsmlib.pipeline import BuildRecord, StageRecord


class FakeBuild:
    """Records how the CLI constructs a build; ``run()`` returns a finished record."""

    calls: ClassVar[list[FakeBuild]] = []
    fail_init: ClassVar[BaseException | None] = None
    fail_run: ClassVar[BaseException | None] = None

    def __init__(self, dsm_version: object = "sim", overrides: Any = None, **kwargs: Any):
        if FakeBuild.fail_init is not None:
            raise FakeBuild.fail_init
        self.dsm_version = dsm_version
        self.overrides = overrides
        self.kwargs = kwargs
        self.run_dir = Path(kwargs.get("out_dir", "out")) / "20260101-000000-test"
        FakeBuild.calls.append(self)

    async def run(self) -> BuildRecord:
        if FakeBuild.fail_run is not None:
            raise FakeBuild.fail_run
        record = BuildRecord(run_id="20260101-000000-test", target="sim", dsm_version="sim")
        record.stages = [StageRecord("prepare", "skipped", 0.1, "reused"), StageRecord("boot")]
        record.image = "vdsm-ci-test/configured:sim-72806-tcg-00000000"
        return record


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeBuild]]:
    FakeBuild.calls = []
    FakeBuild.fail_init = None
    FakeBuild.fail_run = None
    monkeypatch.setattr(vdsmlib.pipeline.parameters, "Build", FakeBuild)
    yield FakeBuild


def test_build_passes_every_argument(
    fake_build: type[FakeBuild], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "build",
            "7.2.2",
            "-p",
            "admin_password=X",
            "-p",
            "sim_knobs={SIM_SCREEN_SEED: 7}",
            "--no-cache",
            "--from-checkpoint",
            "start-ready",
            "--keep",
        ]
    )
    assert code == 0
    (call,) = fake_build.calls
    assert call.dsm_version == "7.2.2"
    # -p values stay strings unless they are YAML mappings or lists, like papermill's -y
    assert call.overrides == {"admin_password": "X", "sim_knobs": {"SIM_SCREEN_SEED": 7}}
    assert call.kwargs == {
        "out_dir": Path("out"),
        "no_cache": True,
        "from_checkpoint": "start-ready",
        "keep": True,
        "executor": "inline",
        "params_dir": None,
    }
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "vdsm-ci-test/configured:sim-72806-tcg-00000000"  # the image, last
    assert any(line.split()[:2] == ["prepare", "skipped"] for line in out)


def test_build_defaults(fake_build: type[FakeBuild], tmp_path: Path) -> None:
    assert main(["build", "--out", str(tmp_path), "--executor", "notebook"]) == 0
    (call,) = fake_build.calls
    assert call.dsm_version == "sim" and call.overrides == {}
    assert call.kwargs == {
        "out_dir": tmp_path,
        "no_cache": False,
        "from_checkpoint": None,
        "keep": False,
        "executor": "notebook",
        "params_dir": None,
    }


def test_project_option_reaches_the_build_through_the_environment(
    fake_build: type[FakeBuild], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--project DIR`` sets VDSM_CI_HOME, so stage notebooks in their own kernels see it."""
    # recorded by monkeypatch, so the variable main() sets is gone after the test
    monkeypatch.setenv("VDSM_CI_HOME", "set-by-this-test")
    monkeypatch.delenv("VDSM_CI_HOME")
    seen: list[str | None] = []
    # the library call sees the environment the CLI set
    monkeypatch.setattr(FakeBuild, "run", lambda self: _record_env(seen))
    assert main(["--project", str(tmp_path), "build"]) == 0
    assert seen == [str(tmp_path.resolve())]


async def _record_env(seen: list[str | None]) -> BuildRecord:
    import os

    seen.append(os.environ.get("VDSM_CI_HOME"))
    return BuildRecord(run_id="20260101-000000-test", target="sim", dsm_version="sim")


def test_plugin_subcommands_come_from_the_registry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vdsmlib.pipeline import plugins

    def add(sub: Any) -> None:
        p = sub.add_parser("hello", help="a plugin command")
        p.set_defaults(func=lambda args: print("hello from a plugin") or 0)

    monkeypatch.setattr(plugins, "_registered", {})  # forgotten after the test
    plugins.register(plugins.CLI, "hello", add)
    assert main(["hello"]) == 0
    assert capsys.readouterr().out == "hello from a plugin\n"
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    assert "hello" in help_text and "sim" in help_text  # the simulator's, from its entry point


def test_build_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["build", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--no-cache", "--from-checkpoint", "--keep", "-p NAME=VALUE", "--executor"):
        assert option in text


def test_bad_usage_exits_2(fake_build: type[FakeBuild], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["build", "--from-checkpoint", "nonsense"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert fake_build.calls == []


def test_param_without_value_is_exit_2_with_one_line(
    fake_build: type[FakeBuild], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "-p", "admin_password"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vdsm: -p 'admin_password': expected NAME=VALUE"]
    assert fake_build.calls == []


@pytest.mark.parametrize(
    ("where", "error", "code"),
    [
        ("init", ParamsError("unknown dsm_version '7.9': no 7.9.yaml"), 2),
        ("run", ParamsError("admin password too weak"), 2),
        ("init", VdsmError("Docker is not running"), 1),
        ("run", VdsmError("stage boot failed: the VM died"), 1),
        ("run", KeyboardInterrupt(), 130),
    ],
    ids=["params-init", "params-run", "vdsm-init", "vdsm-run", "interrupt"],
)
def test_errors_map_to_exit_codes(
    fake_build: type[FakeBuild],
    capsys: pytest.CaptureFixture[str],
    where: str,
    error: BaseException,
    code: int,
) -> None:
    if where == "init":
        fake_build.fail_init = error
    else:
        fake_build.fail_run = error
    assert main(["build"]) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    if code != 130:
        assert lines[0] == f"vdsm: {error}"
    assert "Traceback" not in captured.err and captured.out == ""


def test_unexpected_errors_are_not_swallowed(fake_build: type[FakeBuild]) -> None:
    """Only vdsmlib's errors become exit codes; a bug still shows its traceback."""
    fake_build.fail_run = RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):
        main(["build"])


# -- against the real engine --------------------------------------------------------------------


@pytest.fixture
def empty_image() -> Iterator[str]:
    """A throwaway empty image: enough to create (not run) containers."""
    from vdsmlib.docker.engine import connect

    client = connect()
    repo = f"vdsm-ci-test/empty-{secrets.token_hex(3)}"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w"):
        pass
    client.api.import_image_from_data(data.getvalue(), repository=repo, tag="latest")
    try:
        yield f"{repo}:latest"
    finally:
        for container in client.containers.list(all=True, filters={"ancestor": f"{repo}:latest"}):
            container.remove(force=True, v=True)
        client.images.remove(f"{repo}:latest", force=True)
        client.close()


@pytest.fixture
def labelled_container(empty_image: str) -> Iterator[tuple[str, str, str]]:
    """A created (never started) container with vdsm-ci's labels, of this (live) process."""
    from vdsmlib.docker.engine import connect

    client = connect()
    run_id = "test-cli-" + secrets.token_hex(3)
    container = client.containers.create(
        empty_image,
        command=["/nonexistent"],
        labels=L.owner_labels("stage-container", run_id),
    )
    try:
        yield run_id, container.id, container.name
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)
        client.close()


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.docker
def test_checkpoints_lists_or_says_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checkpoints"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out, "no output"
    assert out[0] == "no checkpoints (run a build first)" or out[0].split()[:2] == [
        "STAGE",
        "FINGERPRINT",
    ]


@pytest.mark.docker
def test_clean_dry_run_lists_and_removes_nothing(
    labelled_container: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from vdsmlib.docker.engine import connect

    run_id, container_id, name = labelled_container
    assert main(["clean", "--dry-run", "--run-id", run_id]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"would remove container {container_id[:12]} {name}",
        "would remove 1 containers, 0 images",
    ]
    client = connect()
    try:
        assert client.containers.get(container_id).id == container_id  # still there
    finally:
        client.close()


@pytest.mark.docker
def test_clean_leaves_live_runs_and_users_containers_of_final_images(
    empty_image: str, labelled_container: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Only leftovers of dead runs go; a live build's containers and a user's container of a
    final image (which carries no run's ownership) stay; no tagged image goes without
    --checkpoints."""
    from vdsmlib.docker.engine import connect
    from vdsmlib.params import load_params
    from vdsmlib.pipeline.flatten import candidate_labels

    _, live_id, _ = labelled_container
    client = connect()
    dead = client.containers.create(
        empty_image,
        command=["/nonexistent"],
        labels={
            **L.owner_labels("stage-container", "test-cli-dead"),
            L.PROCESS: f"{socket.gethostname()}:{_dead_pid()}",
        },
    )
    # what `docker run <final image>` gives a user: the image's labels, inherited
    final = candidate_labels(load_params("sim"), "tcg", "10.0")
    assert L.OWNER_VALUE not in (final.get(L.OWNER), final.get(L.RUN_ID), final.get(L.PROCESS))
    users = client.containers.create(empty_image, command=["/nonexistent"], labels=final)
    try:
        assert main(["clean", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert f"would remove container {dead.short_id} {dead.name}" in out
        assert live_id[:12] not in out, "a live run's container would be removed"
        assert users.short_id not in out, "a user's container of the final image would go"
        # without --checkpoints only superseded images: untagged, so named by ID
        images = [x for x in out.splitlines() if x.startswith("would remove image ")]
        assert all(x.startswith("would remove image sha256:") for x in images), images
        # (a real `vdsm clean` here would also remove other dead runs' leftovers on this engine)
        assert main(["clean", "--run-id", "test-cli-dead"]) == 0
        capsys.readouterr()
        remaining = {c.id for c in client.containers.list(all=True)}
        assert dead.id not in remaining
        assert live_id in remaining and users.id in remaining
    finally:
        users.remove(force=True)
        with contextlib.suppress(Exception):
            dead.remove(force=True)
        client.close()
