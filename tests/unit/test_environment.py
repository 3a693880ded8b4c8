"""environment.yml (conda, for JupyterLab users) and pyproject.toml list the same packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def test_environment_yml_lists_what_pyproject_lists() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda = [d for d in env if isinstance(d, str) and not re.match(r"(python|pip)\b", d)]
    (pip,) = [d["pip"] for d in env if isinstance(d, dict)]
    (editable,) = pip
    extras = set(re.fullmatch(r"-e \.\[(.*)\]", editable)[1].split(","))  # type: ignore[index]
    # pip installs the project with every extra; conda's packages are in pyproject, same pins
    assert extras == set(groups) - {""}
    every = {spec for specs in groups.values() for spec in specs}
    assert set(conda) <= every, set(conda) - every
    assert "ipywidgets>=8.1" in conda and "ipywidgets>=8.1" in project["dependencies"]
