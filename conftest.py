"""Markers for the smoke notebooks that nbmake collects, and what each marker needs.

Each notebook under ``notebooks/smoke`` declares what it needs in its metadata, e.g.
``"vdsm_ci": {"markers": ["docker", "browser"]}`` (``[]`` for none). The markers are added
before ``-m`` deselects, so ``make unit`` (``-m "not docker and not browser and not qemu"``)
leaves such a notebook out like any other test that needs Docker.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


def notebook_markers(path: Path) -> list[str]:
    """The ``vdsm_ci.markers`` of a notebook's metadata; a missing declaration is an error."""
    meta = json.loads(path.read_text()).get("metadata", {}).get("vdsm_ci", {})
    markers = meta.get("markers")
    if not isinstance(markers, list):
        raise pytest.UsageError(
            f"{path}: say what this notebook needs in its metadata: "
            '"vdsm_ci": {"markers": ["docker", "browser"]} (or [] for nothing)'
        )
    return [str(m) for m in markers]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.suffix == ".ipynb":
            for name in notebook_markers(item.path):
                item.add_marker(name)


# -- what a marker needs on the machine: missing means fail, with the line that installs it ------

_engine_error: list[str] = []


def _docker_problem() -> str | None:
    if not _engine_error:
        import docker
        import requests

        try:
            engine = docker.from_env()
            engine.ping()
            engine.close()
            _engine_error.append("")
        except (docker.errors.DockerException, requests.RequestException, OSError) as err:
            _engine_error.append(str(err).splitlines()[0][:200])
    if _engine_error[0]:
        return (
            f"the Docker engine is not reachable ({_engine_error[0]}): install and start it "
            "(apt-get install docker.io && dockerd &, or `make deps`), or set DOCKER_HOST"
        )
    return None


def _browser_problem() -> str | None:
    import os

    from vdsmlib.wizard.browser import DEFAULT_CHROMIUM

    chromium = os.environ.get("VDSM_CHROMIUM") or DEFAULT_CHROMIUM
    if not Path(chromium).exists():
        return f"Chromium is missing at {chromium}: apt-get install chromium (or set VDSM_CHROMIUM)"
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is missing (Playwright records videos with it): apt-get install ffmpeg"
    return None


def _qemu_problem() -> str | None:
    missing = [t for t in ("qemu-system-x86_64", "qemu-img") if shutil.which(t) is None]
    if missing:
        return f"{' and '.join(missing)} missing: apt-get install qemu-system-x86 qemu-utils"
    return None


_NEEDS = {"docker": _docker_problem, "browser": _browser_problem, "qemu": _qemu_problem}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``docker``, ``browser`` or ``qemu`` fails at once, naming what to install,
    when the machine lacks it (``make unit`` deselects these markers instead)."""
    for marker, problem in _NEEDS.items():
        if item.get_closest_marker(marker) is not None:
            message = problem()
            if message:
                pytest.fail(f"needs {marker}: {message}", pytrace=False)
