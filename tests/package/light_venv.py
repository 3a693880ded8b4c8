"""The consumer's light install: the pytest-vdsm wheel, built from ``pytest-vdsm/`` and installed
alone into a fresh virtualenv (pip's own resolver, PyPI or pip's cache), made once per pytest
session and shared by tests/package/test_pytest_vdsm.py and
tests/integration/test_consumer_plugin.py (both call :func:`light_venv`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
PROJECT = CHECKOUT / "pytest-vdsm"
#: the builder's dependencies that the light install must not bring (and ``jupyter*``)
HEAVY = ("papermill", "playwright", "ipykernel", "ipywidgets", "nbformat")


@dataclass(frozen=True)
class LightVenv:
    """A virtualenv with pytest-vdsm installed, and a working directory outside the checkout."""

    root: Path
    wheel: Path
    work: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.python.parent / name

    def run(
        self, argv: list[str], *, cwd: Path | None = None, timeout: float = 900, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(argv, cwd=cwd or self.work, env=self.env, timeout=timeout, check=check)


def run(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert result.returncode == 0, (
            f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}"
        )
    return result


def _clean_env() -> dict[str, str]:
    """This process's environment without what would let the checkout or the project's virtualenv
    leak into the fresh one."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "VDSM_CI_HOME", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir)
    return env


def _make(root: Path) -> LightVenv:
    env = _clean_env()
    dist = root / "dist"
    run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(PROJECT)],
        cwd=root,
        env=env,
    )
    wheels = sorted(dist.glob("pytest_vdsm-*.whl"))
    assert len(wheels) == 1, sorted(p.name for p in dist.iterdir())
    venv.EnvBuilder(with_pip=True, clear=True).create(root / "venv")
    work = root / "elsewhere"
    work.mkdir()
    made = LightVenv(root=root, wheel=wheels[0], work=work, env=env)
    made.run([str(made.python), "-m", "pip", "install", "-q", str(wheels[0])])
    return made


_made: dict[Path, LightVenv] = {}


def light_venv(tmp_path_factory: pytest.TempPathFactory) -> LightVenv:
    """The session's light virtualenv (made on first use: about half a minute)."""
    key = tmp_path_factory.getbasetemp()
    if key not in _made:
        _made[key] = _make(tmp_path_factory.mktemp("pytest-vdsm"))
    return _made[key]
