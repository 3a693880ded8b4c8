"""The consumer's light install works: the pytest-vdsm wheel, installed alone into a fresh
virtualenv, brings none of the builder's heavy dependencies, and its plugin loads from there.

Needs PyPI (or pip's cache) for the build backend and the dependencies. Marked ``slow`` (about
half a minute, the virtualenv shared with tests/integration/test_consumer_plugin.py): ``make
unit`` skips it. No Docker: the plugin's run against an image is in the integration test.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.package.light_venv import HEAVY, LightVenv, light_venv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def light(tmp_path_factory: pytest.TempPathFactory) -> LightVenv:
    return light_venv(tmp_path_factory)


def test_light_install_brings_none_of_the_builders_heavy_dependencies(light: LightVenv) -> None:
    listed = light.run([str(light.python), "-m", "pip", "list", "--format", "json"]).stdout
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
    print("pip list of the light virtualenv:", " ".join(sorted(names)))
    heavy = sorted(n for n in names if n in HEAVY or n.startswith("jupyter"))
    assert not heavy, f"pytest-vdsm pulled in {heavy}"
    assert "pytest-vdsm" in names and "vdsmlib" not in names, sorted(names)
    assert {"docker", "requests", "testcontainers", "pytest"} <= names, sorted(names)


def test_wheel_ships_only_vdsmlib_modules(light: LightVenv) -> None:
    with zipfile.ZipFile(light.wheel) as wheel:
        files = [n for n in wheel.namelist() if ".dist-info/" not in n]
    assert files and all(n.startswith("vdsmlib/") and n.endswith(".py") for n in files), files
    assert "vdsmlib/testing/plugin.py" in files and "vdsmlib/pipeline/__init__.py" not in files


def test_vdsmlib_testing_imports_from_the_light_install(light: LightVenv) -> None:
    out = light.run(
        [
            str(light.python),
            "-c",
            "import sys, vdsmlib, vdsmlib.testing, vdsmlib.testing.plugin; "
            "from vdsmlib.testing import DsmContainer, DsmLoginWaitStrategy; "
            "from vdsmlib.webapi.readiness import FATAL_LOGIN_CODES; "
            "print(vdsmlib.__file__); print(404 in FATAL_LOGIN_CODES); "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))",
        ]
    ).stdout.splitlines()
    package, fatal_404, modules = out
    assert Path(package).is_relative_to(light.root / "venv"), package  # not the checkout
    assert fatal_404 == "True"
    loaded = set(modules.split())
    assert not loaded & {"papermill", "playwright", "ipykernel", "ipywidgets", "nbformat"}
    assert not loaded & {"pydantic", "yaml", "qemu"}, sorted(loaded)


def test_the_plugin_is_registered_and_asks_for_an_image(light: LightVenv) -> None:
    help_text = light.run([str(light.bin("pytest")), "--help"]).stdout
    for option in ("--dsm-image", "--dsm-user", "--dsm-password", "--dsm-bind"):
        assert option in help_text, help_text
    tests = light.work / "no-image"
    tests.mkdir(exist_ok=True)
    (tests / "test_x.py").write_text("def test_x(dsm):\n    pass\n")
    result = light.run(
        [str(light.bin("pytest")), "-p", "no:cacheprovider", str(tests)], cwd=tests, check=False
    )
    assert result.returncode == 1, result.stdout
    assert "pass --dsm-image IMAGE or set VDSM_DSM_IMAGE" in result.stdout
