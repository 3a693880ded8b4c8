"""pytest-vdsm ships exactly what ``vdsmlib.testing`` imports, and declares what that imports.

``pytest-vdsm/pyproject.toml`` lists the files of ``vdsmlib/`` its wheel carries. The list must
equal the import closure of the plugin and the container (with the ``__init__.py`` of every
package on the way, which Python runs on import): a module the client starts to import fails
here, so it is either added on purpose (and is light) or kept out of ``vdsmlib.testing``'s
closure. Its third-party imports must be the distribution's dependencies. Fast: no build.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from vdsmlib.checkpoints.fingerprints import import_closure

CHECKOUT = Path(__file__).resolve().parents[2]
PACKAGE = CHECKOUT / "vdsmlib"
PYPROJECT = CHECKOUT / "pytest-vdsm" / "pyproject.toml"
ROOTS = ("vdsmlib.testing.plugin", "vdsmlib.testing.container")
#: import name -> distribution, for the third-party imports the shipped files may make
DISTRIBUTIONS = {
    "docker": "docker",
    "pytest": "pytest",
    "requests": "requests",
    "testcontainers": "testcontainers",
    "tqdm": "tqdm",
}


def _project() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def _module_name(path: Path) -> str:
    parts = path.relative_to(CHECKOUT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _vdsmlib_imports(path: Path) -> set[str]:
    """The ``vdsmlib`` modules (as files exist for them) that ``path`` imports by absolute name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {
        n
        for n in names
        if n.startswith("vdsmlib.")
        and (
            (PACKAGE / Path(*n.split(".")[1:])).with_suffix(".py").is_file()
            or (PACKAGE / Path(*n.split(".")[1:]) / "__init__.py").is_file()
        )
    }


def closure() -> set[str]:
    """Paths (``vdsmlib/...``) of the import closure of :data:`ROOTS`, with the ``__init__.py``
    of every package on the way and what those import, up to a fixpoint."""
    top = PACKAGE / "__init__.py"
    roots = set(ROOTS) | _vdsmlib_imports(top)
    while True:
        files = set(import_closure(sorted(roots))) | {top}
        packages: set[str] = set()
        for file in files:
            parts = _module_name(file).split(".")
            packages.update(".".join(parts[:i]) for i in range(2, len(parts)))
        if packages <= roots:
            return {f.relative_to(CHECKOUT).as_posix() for f in files}
        roots |= packages


def test_the_wheel_ships_exactly_the_import_closure_of_vdsmlib_testing() -> None:
    force = _project()["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    for source, target in force.items():
        assert source == f"../{target}", f"{source} = {target}: ship each file under its own path"
    shipped = set(force.values())
    wanted = closure()
    missing, extra = sorted(wanted - shipped), sorted(shipped - wanted)
    assert not missing and not extra, (
        f"pytest-vdsm/pyproject.toml's force-include differs from vdsmlib.testing's import "
        f"closure: missing {missing}, not imported {extra}. A new import in the client pulls in "
        "more of vdsmlib: keep it light (no papermill, Playwright, pydantic, ...) and list it, "
        "or keep it out of vdsmlib.testing."
    )


def test_the_shipped_files_import_only_the_declared_dependencies() -> None:
    declared = {
        re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower()
        for d in _project()["project"]["dependencies"]
    }
    used: dict[str, set[str]] = {}
    for rel in sorted(closure()):
        for node in ast.walk(ast.parse((CHECKOUT / rel).read_text())):
            if isinstance(node, ast.Import):
                tops = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                tops = {node.module.split(".")[0]}
            else:
                continue
            for top in tops - set(sys.stdlib_module_names) - {"vdsmlib"}:
                used.setdefault(top, set()).add(rel)
    unknown = {t: sorted(f) for t, f in used.items() if t not in DISTRIBUTIONS}
    assert not unknown, f"the client's files import {unknown}: not a pytest-vdsm dependency"
    needed = {DISTRIBUTIONS[t] for t in used}
    assert needed == declared, f"imported {sorted(needed)}, declared {sorted(declared)}"


def test_the_plugin_entry_point_is_vdsmlibs_own() -> None:
    main = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    light = _project()
    assert (
        light["project"]["entry-points"]["pytest11"] == main["project"]["entry-points"]["pytest11"]
    )
    assert light["project"]["name"] == "pytest-vdsm"
    assert light["project"]["version"] == main["project"]["version"]
