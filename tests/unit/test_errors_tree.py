"""The error tree drawn in :mod:`vdsmlib.errors` is the code's: every :class:`VdsmError`
subclass vdsmlib defines is drawn under its real parent, with the module that defines it, and
nothing else is drawn.

The drawing is the ``::`` block of the module docstring, one class a line::

    VdsmError
     +-- DockerError            (vdsmlib.docker.engine: what it means)
     |    +-- ContainerExited   (vdsmlib.docker.container: what it means)

A line's depth is its indentation (five characters a level), its parent the nearest line
above it one level up; the module in parentheses is the exact module that defines the class.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field

import pytest

import vdsmlib
import vdsmlib.errors
from vdsmlib.errors import VdsmError

ROOT = "VdsmError"
INDENT = "    "  # of the literal block in the docstring
LEVEL = 5  # characters of one level: " |   " or "     ", then " +-- " before the name
_NODE = re.compile(
    r"^(?P<levels>(?: \|   |     )*) \+-- (?P<name>\w+) +\((?P<module>[\w.]+): (?P<what>\S.*)\)$"
)


@dataclass
class Drawn:
    name: str
    module: str
    depth: int
    line: str
    parent: Drawn | None = None
    children: list[Drawn] = field(default_factory=list)


def drawn_lines(doc: str) -> list[str]:
    """The lines of the first ``::`` literal block of ``doc``, without its indentation."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("::")) + 1
    while start < len(lines) and not lines[start].strip():
        start += 1
    block: list[str] = []
    for line in lines[start:]:
        if not line.startswith(INDENT) or not line.strip():
            break
        block.append(line.removeprefix(INDENT).rstrip())
    return block


def parse_tree(doc: str) -> list[Drawn]:
    """Every drawn class, root first, with its parent; fails on a line that is not one."""
    block = drawn_lines(doc)
    assert block and block[0] == ROOT, f"the drawing starts with {ROOT} alone: {block[:1]}"
    root = Drawn(ROOT, "vdsmlib.errors", 0, block[0])
    nodes = [root]
    path = [root]  # the last node drawn at each depth
    for line in block[1:]:
        match = _NODE.match(line)
        assert match, f"not a line of the tree (`<levels> +-- Name  (module: what)`): {line!r}"
        depth = len(match["levels"]) // LEVEL + 1
        assert depth <= len(path), f"drawn deeper than its parent: {line!r}"
        parent = path[depth - 1]
        node = Drawn(match["name"], match["module"], depth, line, parent=parent)
        parent.children.append(node)
        del path[depth:]
        path.append(node)
        nodes.append(node)
    return nodes


def expected_levels(node: Drawn) -> str:
    """The `` |   `` / five-space columns in front of ``node``'s ``+--``: a bar where an
    ancestor has a sibling drawn below."""
    columns: list[str] = []
    ancestor = node.parent
    while ancestor is not None and ancestor.parent is not None:
        siblings = ancestor.parent.children
        later = siblings.index(ancestor) < len(siblings) - 1
        columns.append(" |   " if later else "     ")
        ancestor = ancestor.parent
    return "".join(reversed(columns))


def vdsmlib_errors() -> dict[str, type[VdsmError]]:
    """Every subclass of VdsmError defined in vdsmlib (all its modules imported), by name."""
    for module in pkgutil.walk_packages(vdsmlib.__path__, "vdsmlib."):
        if not module.name.endswith(".__main__"):  # ``python -m``: runs the command
            importlib.import_module(module.name)
    found: dict[str, type[VdsmError]] = {ROOT: VdsmError}
    todo: list[type[VdsmError]] = [VdsmError]
    while todo:
        for cls in todo.pop().__subclasses__():
            if cls.__module__.split(".")[0] != "vdsmlib" or "<locals>" in cls.__qualname__:
                continue  # the simulator's, a test's, or made in a function at run time
            if cls in found.values():
                continue  # reached again through its second base
            other = found.setdefault(cls.__name__, cls)
            assert other is cls, f"two errors named {cls.__name__}: {other} and {cls}"
            todo.append(cls)
    return found


def vdsmlib_parent(cls: type[VdsmError]) -> type[VdsmError]:
    """The one vdsmlib error among ``cls``'s bases (a builtin base beside it is not drawn)."""
    bases = [b for b in cls.__bases__ if issubclass(b, VdsmError)]
    assert len(bases) == 1, f"{cls.__name__} has {len(bases)} VdsmError bases: a tree cannot say"
    return bases[0]


try:
    DRAWN, UNREADABLE = parse_tree(vdsmlib.errors.__doc__ or ""), ""
except AssertionError as err:  # reported by a test below, not as a collection error
    DRAWN, UNREADABLE = [], str(err)
CODE = vdsmlib_errors()


def test_the_drawing_reads() -> None:
    assert not UNREADABLE, f"the tree in vdsmlib/errors.py: {UNREADABLE}"


def test_the_walk_finds_the_errors_of_subpackages() -> None:
    # The walk imports every module: errors of sub-packages and sub-subclasses are found.
    from vdsmlib.docker.container import ContainerExited
    from vdsmlib.webapi.readiness import _LoginNotYet

    assert CODE["ContainerExited"] is ContainerExited
    assert CODE["_LoginNotYet"] is _LoginNotYet
    assert len(CODE) > 30


def test_every_error_of_vdsmlib_is_drawn() -> None:
    drawn = {node.name for node in DRAWN}
    missing = sorted(
        f"{name} ({cls.__module__})" for name, cls in CODE.items() if name not in drawn
    )
    assert missing == [], f"not drawn in vdsmlib/errors.py: {missing}"


def test_every_drawn_class_is_an_error_of_vdsmlib() -> None:
    unknown = sorted(node.name for node in DRAWN if node.name not in CODE)
    assert unknown == [], f"drawn in vdsmlib/errors.py but not a VdsmError of vdsmlib: {unknown}"


def test_each_class_is_drawn_once() -> None:
    names = [node.name for node in DRAWN]
    assert sorted({n for n in names if names.count(n) > 1}) == []


@pytest.mark.parametrize("node", DRAWN[1:], ids=lambda node: node.name)
def test_drawn_under_its_parent_with_its_module(node: Drawn) -> None:
    cls = CODE.get(node.name)
    if cls is None:
        pytest.fail(f"{node.name} is drawn but is not a VdsmError of vdsmlib")
    assert node.parent is not None
    assert node.parent.name == vdsmlib_parent(cls).__name__, (
        f"{node.name} is drawn under {node.parent.name}, "
        f"its parent is {vdsmlib_parent(cls).__name__}"
    )
    assert node.module == cls.__module__, (
        f"{node.name} is drawn in {node.module}, it is defined in {cls.__module__}"
    )


def test_the_root_is_vdsmerror_in_vdsmlib_errors() -> None:
    assert DRAWN[0].name == ROOT and VdsmError.__module__ == DRAWN[0].module


def test_the_drawing_is_well_formed() -> None:
    for node in DRAWN[1:]:
        assert node.line.startswith(expected_levels(node) + " +-- "), (
            f"its bars do not match the tree: {node.line!r}"
        )
    for line in (vdsmlib.errors.__doc__ or "").splitlines():
        assert len(line) <= 100, f"longer than 100 characters: {line!r}"


def test_a_builtin_base_beside_a_vdsmlib_error_is_not_the_parent() -> None:
    from vdsmlib.docker.engine import DockerError
    from vdsmlib.qemu.errors import QmpError

    class Both(DockerError, ValueError):
        pass

    class Two(DockerError, QmpError):
        pass

    assert vdsmlib_parent(Both) is DockerError
    with pytest.raises(AssertionError, match="2 VdsmError bases"):
        vdsmlib_parent(Two)


# -- the parser itself -------------------------------------------------------------------------

SAMPLE = """Errors.

::

    VdsmError
     +-- A                      (m.a: first)
     |    +-- B                 (m.b: under A (with parentheses))
     |    |    +-- C            (m.c: under B)
     |    +-- D                 (m.d: under A again)
     +-- E                      (m.e: last)

Prose after the tree is not parsed: F (m.f: not a class)
"""


def test_parser_reads_names_parents_and_modules() -> None:
    nodes = parse_tree(SAMPLE)
    got = [(n.name, n.parent.name if n.parent else None, n.module) for n in nodes]
    assert got == [
        ("VdsmError", None, "vdsmlib.errors"),
        ("A", "VdsmError", "m.a"),
        ("B", "A", "m.b"),
        ("C", "B", "m.c"),
        ("D", "A", "m.d"),
        ("E", "VdsmError", "m.e"),
    ]
    assert all(n.line.startswith(expected_levels(n) + " +-- ") for n in nodes[1:])


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("     +-- A", "no module"),
        ("     +-- A  (what it means)", "no module"),
        ("     +-- A etc.  (m.a: x)", "not one class"),
        ("          +-- A  (m.a: x)", "deeper than its parent"),
    ],
)
def test_parser_refuses_what_is_not_a_tree_line(line: str, why: str) -> None:
    with pytest.raises(AssertionError):
        parse_tree(f"::\n\n    VdsmError\n    {line}\n")


def test_a_bar_that_does_not_match_the_tree_is_found() -> None:
    # A is the root's last child and D is A's: no bar in front of D, nor of D's child C.
    nodes = parse_tree(
        "::\n\n    VdsmError\n     +-- A   (m: a)\n     |    +-- D   (m: d)\n"
        "     |    |    +-- C   (m: c)\n"
    )
    assert [expected_levels(n) for n in nodes[1:]] == ["", " " * 5, " " * 10]
    assert not nodes[2].line.startswith(expected_levels(nodes[2]) + " +-- ")
    assert not nodes[3].line.startswith(expected_levels(nodes[3]) + " +-- ")
