"""Where the project files come from (vdsmlib.project); the plugin registries
(vdsmlib.pipeline.plugins)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vdsmlib.params import load_params
from vdsmlib.pipeline import plugins
from vdsmlib.pipeline.base import UPSTREAM_SOURCES
from vdsmlib.pipeline.plugins import PluginError
from vdsmlib.project import ProjectError, params_dir, project_dir


def test_vdsm_ci_home_must_be_a_project_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VDSM_CI_HOME", str(tmp_path))
    with pytest.raises(ProjectError, match=r"is not a vdsm-ci project directory .*params"):
        project_dir()


def test_vdsm_ci_home_is_where_params_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for name in ("params", "notebooks"):
        shutil.copytree(project_dir() / name, home / name)
    for name in ("Dockerfile", "Dockerfile.flatten"):
        shutil.copy(project_dir() / name, home / name)
    (home / "params" / "mine.yaml").write_text((home / "params" / "sim.yaml").read_text())
    monkeypatch.setenv("VDSM_CI_HOME", str(home))
    assert params_dir() == home / "params"
    params = load_params("mine")
    assert params.dsm_version == "mine"
    assert params.profile_dirs[0] == str(home / "params" / "profiles")


def test_unknown_base_source_names_the_known_ones() -> None:
    with pytest.raises(PluginError, match=r"no vdsmlib.base_sources plugin named 'nope'") as err:
        plugins.base_source("nope", UPSTREAM_SOURCES)
    assert "registry" in str(err.value) and "sim-build" in str(err.value)


def test_builtin_source_wins_and_the_simulator_is_a_plugin() -> None:
    assert plugins.base_source("registry", UPSTREAM_SOURCES) is UPSTREAM_SOURCES["registry"]
    sim = plugins.base_source("sim-build", UPSTREAM_SOURCES)
    assert sim.__module__ == "vdsm_sim.plugin"


def test_registered_plugin_overrides_for_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def mine(client: object, params: object) -> str:
        return "example/upstream:1"

    monkeypatch.setattr(plugins, "_registered", {})  # forgotten after the test
    plugins.register(plugins.BASE_SOURCES, "mine", mine)
    assert plugins.base_source("mine", UPSTREAM_SOURCES) is mine
