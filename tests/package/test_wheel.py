"""The package works when installed: built as sdist and wheel, installed into a fresh virtualenv,
run from a directory outside the checkout.

Needs PyPI (or pip's cache) for the build backend and the dependencies; CI has it (see README,
"Tests"). It is marked ``slow`` (about a minute): ``make unit`` skips it, ``make test`` runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[2]


def _run(
    cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(python of the fresh virtualenv, a working directory outside the checkout, environment)."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VDSM_CI_HOME")}
    env.pop("VIRTUAL_ENV", None)
    dist = root / "dist"
    # sdist first, then the wheel from the sdist: proves the sdist carries the project files too
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(CHECKOUT)], cwd=root, env=env)
    # the simulator is a distribution of its own (vdsm-sim), beside vdsmlib
    simulator = CHECKOUT / "simulator"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(simulator)], cwd=root, env=env)
    wheels = sorted(dist.glob("vdsmlib-*.whl")) + sorted(dist.glob("vdsm_sim-*.whl"))
    assert len(wheels) == 2, sorted(p.name for p in dist.iterdir())
    target = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    python = target / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", *map(str, wheels)], cwd=root, env=env)
    work = root / "elsewhere"
    work.mkdir()
    return python, work, env


def test_wheel_holds_the_project_files_and_the_simulator_image_sources(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    python, work, env = installed
    out = _run(
        [
            str(python),
            "-c",
            "import vdsmlib, vdsmlib.project as p; from pathlib import Path; "
            "pkg = Path(vdsmlib.__file__).parent; print(pkg); print(p.project_dir()); "
            "print(sorted(f.name for f in p.notebooks_dir().glob('*.ipynb'))); "
            "import vdsm_sim; sim = Path(vdsm_sim.__file__).parent; "
            "print(all((sim / 'image' / n).is_file() for n in "
            "('Dockerfile.sim', 'initramfs/init', 'container/entry.sh')) "
            "and not (pkg / 'sim').exists()); "
            "print((pkg / 'pipeline' / 'assets' / 'healthcheck.sh').is_file())",
        ],
        cwd=work,
        env=env,
    ).stdout.splitlines()
    package, project, notebooks, sim_files, assets = out
    assert Path(package).is_relative_to(python.parent.parent), package  # not the checkout
    assert project == str(Path(package) / "_project"), project
    assert "build.ipynb" in notebooks and "boot.ipynb" in notebooks, notebooks
    assert sim_files == "True" and assets == "True"


def test_vdsm_help_lists_the_builtin_and_plugin_commands(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    python, work, env = installed
    help_text = _run([str(python.parent / "vdsm"), "--help"], cwd=work, env=env).stdout
    for command in ("build", "checkpoints", "explore", "clean", "pin", "sim", "--project"):
        assert command in help_text, help_text
    # the simulator's subcommand arrives through the vdsmlib.cli entry point of vdsm-sim's wheel
    sim_help = _run([str(python.parent / "vdsm"), "sim", "--help"], cwd=work, env=env).stdout
    assert "build" in sim_help and "run" in sim_help, sim_help


def test_params_of_every_target_load_from_the_installed_files(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    python, work, env = installed
    out = _run(
        [
            str(python),
            "-c",
            "from vdsmlib.params import available_targets, load_params; "
            "from vdsmlib.pipeline.plugins import BASE_SOURCES, load; "
            "p = load_params('sim'); print(p.target, p.base.source, p.profile_dirs[0]); "
            "print(' '.join(available_targets())); print(' '.join(sorted(load(BASE_SOURCES))))",
        ],
        cwd=work,
        env=env,
    ).stdout.splitlines()
    first, targets, sources = out
    target, source, profiles = first.split()
    assert (target, source) == ("sim", "sim-build")
    assert profiles.endswith("vdsmlib/_project/params/profiles"), profiles
    assert "sim" in targets.split() and "7.2.2" in targets.split(), targets
    assert sources == "sim-build", sources


def test_vdsm_ci_home_overrides_the_installed_files(
    installed: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    python, work, env = installed
    missing = _run_fail(
        [str(python), "-c", "from vdsmlib.params import load_params; load_params('sim')"],
        cwd=work,
        env={**env, "VDSM_CI_HOME": str(tmp_path)},
    )
    assert f"VDSM_CI_HOME={tmp_path} is not a vdsm-ci project directory" in missing
    out = _run(
        [str(python), "-c", "from vdsmlib.project import params_dir; print(params_dir())"],
        cwd=work,
        env={**env, "VDSM_CI_HOME": str(CHECKOUT)},
    ).stdout.strip()
    assert out == str(CHECKOUT / "params")


def _run_fail(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr
