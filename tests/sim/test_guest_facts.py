"""The simulator implements DSM's facts (vdsmlib.dsm) and carries them into the guest image.

The guest imports ``vdsmlib.dsm`` directly. On the host that is the installed vdsmlib; in the
image, ``vdsm_sim.image.build`` copies vdsmlib's stdlib-only files (``FACTS_FILES``) into the
build context under ``facts/vdsmlib/``, and the initramfs puts them at ``/opt/sim/vdsmlib``
beside ``/opt/sim/guest``. These tests lay the guest out the same way, from the same list,
and run it with the standard library and that copy only.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from vdsm_sim.guest import facts
from vdsm_sim.guest.screens import EXTRA_DIALOG_ID, SCREENS
from vdsm_sim.guest.webapi import CATALOG
from vdsm_sim.image import build

from vdsmlib.dsm import errors, policy, screens, webapi

# How the image's build context names the guest package and the facts (Dockerfile.sim copies
# guest/ and facts/; mkinitramfs.sh puts guest/ and facts/vdsmlib/ side by side in /opt/sim).
GUEST_PREFIX = "guest/"
FACTS_PREFIX = "facts/"


def opt_sim(into: Path) -> Path:
    """``/opt/sim`` of the guest, made from the image's build context files: guest + facts."""
    for name, path in build._context_files(build.GUEST_DIR):
        for prefix in (GUEST_PREFIX, FACTS_PREFIX):
            if name.startswith(prefix):
                rel = name if prefix == GUEST_PREFIX else name[len(prefix) :]
                target = into / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    return into


@pytest.fixture
def sim_dir(tmp_path: Path) -> Path:
    return opt_sim(tmp_path / "opt-sim")


def test_on_the_host_the_guest_uses_the_librarys_own_facts() -> None:
    assert facts.policy is policy
    assert facts.screens is screens
    assert facts.webapi is webapi
    assert facts.errors is errors


def test_the_image_carries_vdsmlibs_facts_and_only_them(sim_dir: Path) -> None:
    assert sorted(p.name for p in sim_dir.iterdir()) == ["guest", "vdsmlib"]
    vdsmlib_dir = Path(errors.__file__).resolve().parents[1]
    copied = {p.relative_to(sim_dir).as_posix() for p in (sim_dir / "vdsmlib").rglob("*.py")}
    expected = {"vdsmlib/__init__.py", "vdsmlib/errors.py"} | {
        f"vdsmlib/dsm/{p.name}" for p in (vdsmlib_dir / "dsm").glob("*.py")
    }
    assert copied == expected
    for rel in copied:
        assert (sim_dir / rel).read_bytes() == (vdsmlib_dir.parent / rel).read_bytes(), rel


def _imports(path: Path, package: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, names taken from it) of every import in ``path``, a module of
    ``package`` (names: empty for ``import module``)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{module}" if module else base
            yield node.lineno, module, [alias.name for alias in node.names]


def _bound_names(path: Path) -> set[str]:
    """Names a module binds at its top level (what ``from module import name`` can take)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def _outside(root: Path, top: str) -> list[str]:
    """Imports of the package ``root/top`` that neither the standard library nor the modules
    under ``root`` satisfy (``root`` is what the guest has on ``sys.path``)."""

    def source(module: str) -> Path | None:
        path = root.joinpath(*module.split("."))
        for candidate in (path / "__init__.py", path.with_suffix(".py")):
            if candidate.is_file():
                return candidate
        return None

    def missing(module: str) -> bool:
        parts = module.split(".")
        # importing a.b.c imports a, a.b and a.b.c
        return any(source(".".join(parts[:n])) is None for n in range(1, len(parts) + 1))

    stray = []
    for path in sorted((root / top).rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        package = ".".join(rel.parts[:-1])  # __package__ of a module and of an __init__
        for line, module, names in _imports(path, package):
            first = module.split(".")[0]
            if first == "__future__" or first in sys.stdlib_module_names:
                continue
            where = f"{path.relative_to(root).as_posix()}:{line}"
            if missing(module):
                stray.append(f"{where}: {module}")
                continue
            bound = _bound_names(source(module) or path)
            # "from m import name": a submodule m.name, else a name m binds
            stray.extend(
                f"{where}: {module}.{name}"
                for name in names
                if name != "*" and source(f"{module}.{name}") is None and name not in bound
            )
    return stray


def test_the_facts_import_only_themselves_and_the_standard_library(sim_dir: Path) -> None:
    # Every import of every copied file, even one inside a function the guest never calls:
    # a facts module that starts importing more of vdsmlib makes FACTS_FILES incomplete.
    assert _outside(sim_dir, "vdsmlib") == []


def test_the_guest_imports_only_itself_the_facts_and_the_standard_library(
    sim_dir: Path,
) -> None:
    assert _outside(sim_dir, "guest") == []


def test_the_import_check_sees_a_missing_facts_file(sim_dir: Path) -> None:
    # The check is only as good as its resolution: drop one copied module and it must complain.
    (sim_dir / "vdsmlib" / "errors.py").unlink()
    assert _outside(sim_dir, "vdsmlib") == ["vdsmlib/__init__.py:3: vdsmlib.errors"]


def test_screen_table_is_dsms_screens_plus_the_extra_dialog() -> None:
    assert [s for s in SCREENS if s != EXTRA_DIALOG_ID] == list(screens.SCREEN_IDS)
    for screen_id, fact in screens.POST_WIZARD.items():
        entry = SCREENS[screen_id]
        assert (entry.kind, entry.title, entry.title_selector) == (
            fact.kind,
            fact.title,
            fact.title_selector,
        )
        if fact.action_syno_id is not None:
            assert fact.action_syno_id in {b.syno_id for b in entry.buttons}
        else:
            assert entry.close_act  # the notification panel closes with its tool


def test_every_simulated_api_is_in_dsms_catalogue_with_its_versions() -> None:
    assert set(CATALOG) <= set(webapi.CATALOGUE)
    for name, api in CATALOG.items():
        assert api.facts is webapi.CATALOGUE[name]


def test_the_guest_runs_with_the_stdlib_and_the_copied_facts_only(sim_dir: Path) -> None:
    log = sim_dir.parent / "guest.log"
    # -I -S: no site-packages (no installed vdsmlib or vdsm_sim), no PYTHONPATH, no current
    # directory: only the stdlib and /opt/sim's copy, which must be the vdsmlib imported.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import runpy, importlib.util\n"
        "import vdsmlib\n"
        "assert list(vdsmlib.__path__) == [sys.argv[1] + '/vdsmlib'], vdsmlib.__path__\n"
        "for name in ('vdsm_sim', 'vdsmlib.params', 'vdsmlib.pipeline', 'vdsmlib.webapi'):\n"
        "    assert importlib.util.find_spec(name) is None, name\n"
        "sys.argv = ['guest', '--host', '127.0.0.1', '--port', '0']\n"
        "runpy.run_module('guest', run_name='__main__', alter_sys=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "PYTHON"))}
    env["SIM_SCREENS"] = "2fa-promo,mfa-warning"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", code, str(sim_dir)],
            cwd=sim_dir.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        url = found.group(1)
        with urllib.request.urlopen(
            url + "/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query&query=ALL",
            timeout=5,
        ) as answer:
            info = json.load(answer)["data"]
        assert info["SYNO.API.Auth"] == webapi.CATALOGUE["SYNO.API.Auth"].info()
        with urllib.request.urlopen(url + "/sim/state", timeout=5) as answer:
            assert json.load(answer)["screens"] == ["2fa-promo", "mfa-warning"]
        # The admin form enforces DSM's password policy from the same source.
        request = urllib.request.Request(
            url + "/sim/ui/admin",
            data=json.dumps(
                {
                    "device_name": "nas",
                    "nas_account": "ci",
                    "password": "short",
                    "password_confirm": "short",
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            rejected = json.load(answer)
        assert rejected["errors"]["password"] == policy.check_password("short", "ci")
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_guest_does_not_start_without_the_facts(sim_dir: Path) -> None:
    # The run above proves something only if the copy is what it imports: without it, no guest.
    shutil.rmtree(sim_dir / "vdsmlib" / "dsm")
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import guest.server",
            str(sim_dir),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "No module named 'vdsmlib.dsm'" in done.stderr, done.stderr
