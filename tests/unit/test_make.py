"""``make build``'s front end (vdsmlib.cli.make): papermill's parameters, the no-op check
without a kernel, papermill only when there is work, and one line when the notebook fails.

As in test_cli, the library's ``Build`` is replaced by a recording fake; papermill's
``execute_notebook`` by a recorder where no kernel is wanted. Two tests start a real kernel
(no Docker): the kernel's encryption warning and a failing notebook's console.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, ClassVar

import docker.errors
import nbformat
import papermill
import papermill.cli
import pytest
from vdsm_sim.plugin import upstream_image

import vdsmlib.pipeline.parameters
from vdsmlib.cli.make import main, notebook_defaults, papermill_parameters, split_secrets
from vdsmlib.evidence.record import BuildRecord, StageRecord
from vdsmlib.params import NOTEBOOK_PARAMETERS, load_params
from vdsmlib.pipeline.base import look_up_base
from vdsmlib.pipeline.run import kernel_config

ROOT = Path(__file__).parents[2]
BUILD_NOTEBOOK = ROOT / "notebooks" / "build.ipynb"
IMAGE = "vdsm-ci-test/configured:sim-72806-tcg-00000000"


class FakeBuild:
    """What build_from_parameters constructs; ``run_if_noop`` answers as told."""

    calls: ClassVar[list[FakeBuild]] = []
    noop: ClassVar[bool] = True

    def __init__(self, dsm_version: object = "sim", overrides: Any = None, **kwargs: Any):
        self.dsm_version, self.overrides, self.kwargs = dsm_version, overrides, kwargs
        self.run_dir = Path(kwargs["out_dir"]) / "20260101-000001-noop"
        FakeBuild.calls.append(self)

    async def run_if_noop(self) -> BuildRecord | None:
        if not FakeBuild.noop:
            self.work = "no checkpoint matches: cold boot"
            return None
        record = BuildRecord(run_id="20260101-000001-noop", target="sim", dsm_version="sim")
        record.status, record.image, record.image_run_id = "ok", IMAGE, "20260101-000000-made"
        record.stages = [StageRecord("prepare", "skipped", 0.1, "reused")]
        return record


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch) -> type[FakeBuild]:
    FakeBuild.calls, FakeBuild.noop = [], True
    monkeypatch.setattr(vdsmlib.pipeline.parameters, "Build", FakeBuild)
    return FakeBuild


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """papermill.execute_notebook's calls (none of them starts a kernel)."""
    calls: list[dict[str, Any]] = []

    def execute(input_path: str, output_path: str, **kwargs: Any) -> None:
        calls.append({"input": input_path, "output": output_path, **kwargs})

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    return calls


def _parse(*argv: str) -> dict[str, Any]:
    from vdsmlib.cli.make import build_parser

    return papermill_parameters(build_parser().parse_args(["nb.ipynb", "out.ipynb", *argv]))


def test_parameters_are_read_as_papermill_reads_them(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text("server_name: from-file\nkeep: true\n")
    encoded = base64.b64encode(b"admin_user: from-b64").decode()
    values = _parse(
        "-p", "no_cache", "True", "-p", "dsm_version", "7.2.2", "-p", "accelerator", "None",
        "-r", "admin_password", "True", "-y", "sim_knobs: {SIM_SCREEN_SEED: '7'}\nkeep: false",
        "-f", str(file), "-b", encoded, "-p", "executor", "2026-01-01", "-p", "out_dir", "7",
    )  # fmt: skip
    assert values == {
        "admin_user": "from-b64",
        "server_name": "from-file",
        "keep": False,  # -y after -f, as papermill applies them
        "sim_knobs": {"SIM_SCREEN_SEED": "7"},
        "no_cache": True,
        "dsm_version": "7.2.2",
        "accelerator": None,
        "admin_password": "True",  # -r: raw
        "executor": "2026-01-01",
        "out_dir": 7,
    }
    for raw in ("True", "False", "None", "7", "7.5", "7.2.2", "sim", "1e3", "-2"):
        assert _parse("-p", "x", raw)["x"] == papermill.cli._resolve_type(raw), raw


def test_defaults_are_the_parameters_cell_of_build_ipynb() -> None:
    defaults = notebook_defaults(BUILD_NOTEBOOK)
    assert set(defaults) == set(NOTEBOOK_PARAMETERS)
    assert defaults["dsm_version"] == "sim" and defaults["out_dir"] == "out"
    assert defaults["executor"] == "notebook" and defaults["no_cache"] is False


def test_noop_prints_the_image_and_starts_no_kernel(
    fake_build: type[FakeBuild],
    executions: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    argv = [str(BUILD_NOTEBOOK), str(tmp_path / "build-sim.ipynb"), "-p", "dsm_version", "sim"]
    assert main([*argv, "-p", "out_dir", str(out)]) == 0
    assert executions == []  # no papermill, so no kernel
    (build,) = fake_build.calls
    # the build the notebook would make: its defaults, the parameters given over them
    assert build.dsm_version == "sim"
    assert build.kwargs == {
        "out_dir": out,
        "no_cache": False,
        "from_checkpoint": None,
        "keep": False,
        "executor": "notebook",
        "params_dir": None,
    }
    assert build.overrides["sim_knobs"] is None and build.overrides["admin_user"] == ""
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == IMAGE
    assert "nothing to do" in printed[0] and "20260101-000000-made" in printed[0]
    assert not (tmp_path / "build-sim.ipynb").exists()


def test_work_to_do_runs_the_notebook_with_the_same_parameters(
    fake_build: type[FakeBuild],
    executions: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_build.noop = False
    output = tmp_path / "build-sim.ipynb"
    knobs = "sim_knobs: {SIM_EXTRA_DIALOG: Storage Pool Check}"
    out = ["-p", "out_dir", str(tmp_path / "out")]
    assert (
        main([str(BUILD_NOTEBOOK), str(output), "-y", knobs, "-p", "no_cache", "True", *out]) == 0
    )
    assert fake_build.calls[0].overrides["sim_knobs"] == {"SIM_EXTRA_DIALOG": "Storage Pool Check"}
    assert "work to do (no checkpoint matches: cold boot)" in capsys.readouterr().out
    (call,) = executions
    assert call["input"] == str(BUILD_NOTEBOOK) and call["output"] == str(output)
    assert call["parameters"] == {
        "sim_knobs": {"SIM_EXTRA_DIALOG": "Storage Pool Check"},
        "no_cache": True,
        "out_dir": str(tmp_path / "out"),
    }
    # the console gets what the kernel prints, not papermill's cell markers and displays
    assert "log_output" not in call and call["stdout_file"] is not None
    assert call["config"]["KernelManager"]["transport_encryption"] == "auto"


def test_what_the_check_cannot_settle_goes_to_the_notebook(
    fake_build: type[FakeBuild], executions: list[dict[str, Any]], tmp_path: Path
) -> None:
    argv = [str(BUILD_NOTEBOOK), str(tmp_path / "o.ipynb"), "-p", "out_dir", str(tmp_path)]
    # an unknown parameter: the notebook refuses it (and says so); explore: not a build
    assert main([*argv, "-p", "colour", "blue"]) == 0
    assert main([*argv, "-p", "explore", "final"]) == 0
    assert fake_build.calls == [] and len(executions) == 2


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(BUILD_NOTEBOOK), "o.ipynb", "--kernel", "python3"])
    assert exc.value.code == 2
    assert main([str(BUILD_NOTEBOOK), "o.ipynb", "-f", str(tmp_path / "missing.yaml")]) == 2
    assert "bad parameters" in capsys.readouterr().err


def test_an_output_in_a_missing_folder_is_one_line_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "missing" / "build.ipynb"
    assert main([str(BUILD_NOTEBOOK), str(output), "-p", "out_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the folder {output.parent} does not exist" in err
    assert not output.parent.exists() and list(tmp_path.iterdir()) == []


def test_the_lookup_makes_nothing_and_says_what_is_missing() -> None:
    class NoImages:
        def get(self, ref: str) -> Any:
            raise docker.errors.ImageNotFound(ref)

    class Client:
        images = NoImages()

    # the simulator's base source, asked not to make: None, and nothing was built
    params = load_params("sim")
    assert upstream_image(Client(), params, make=False) is None  # type: ignore[arg-type]
    missing = look_up_base(Client(), params)  # type: ignore[arg-type]
    assert missing == "the upstream image of base.source sim-build is not there yet"


def _notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    return path


def test_kernel_does_not_run_over_tcp_without_encryption(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    notebook = _notebook(tmp_path / "nb.ipynb", "x = 1", "print(x + 1)")
    papermill.execute_notebook(
        str(notebook), str(tmp_path / "out.ipynb"), progress_bar=False, config=kernel_config()
    )
    err = capfd.readouterr().err
    assert "without encryption" not in err, err
    executed = json.loads((tmp_path / "out.ipynb").read_text())
    assert "".join(executed["cells"][1]["outputs"][0]["text"]) == "2\n"


def test_a_failing_notebook_ends_in_one_line_without_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A real kernel: a build that fails as build.ipynb's finish() fails (BuildFailed)."""
    line = (
        "build failed: stage post-wizard: unknown screen after 8 s: a modal (timeouts.modal) "
        "(screenshot: evidence/post-wizard-unknown.png); report: out/r/report.html"
    )
    notebook = _notebook(
        tmp_path / "nb.ipynb",
        'dsm_version = "not-a-target"',  # the no-op check cannot make a build of it
        "import logging; from vdsmlib.notebook import BuildFailed, log_to_output\n"
        "log_to_output(); logging.getLogger('vdsmlib.pipeline.run').info('stage boot: starting')",
        f"raise BuildFailed({line!r})",
    )
    assert main([str(notebook), str(tmp_path / "out.ipynb"), "-p", "out_dir", str(tmp_path)]) == 1
    out, err = capfd.readouterr()
    assert "stage boot: starting" in out  # what the kernel prints reaches the console
    # the summary is the only line: the kernel, not interrupted before its shutdown, logs no
    # "KeyboardInterrupt caught in kernel." (vdsmlib.pipeline.kernels)
    assert err.strip().splitlines() == [line], err
    for noise in ("Traceback", "without encryption", "Executing Cell", "IPython.core.display"):
        assert noise not in out + err, noise


def test_a_password_parameter_goes_to_the_kernels_environment_not_the_notebook() -> None:
    given = {"dsm_version": "sim", "admin_password": "Zq9-Secret", "keep": False}
    parameters, environment = split_secrets(given)
    assert parameters == {"dsm_version": "sim", "keep": False}
    assert environment == {"VDSM_ADMIN_PASSWORD": "Zq9-Secret"}
    assert given["admin_password"] == "Zq9-Secret"  # the caller's mapping is left alone
    # empty (an unset CI secret) or not a string: a parameter, which the notebook refuses by name
    for value in ("", None, 12345678):
        assert split_secrets({"admin_password": value}) == ({"admin_password": value}, {})
