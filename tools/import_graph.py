"""Print vdsmlib's package import graph; fail on a cycle or an import that goes up the layers.

The layers, bottom to top (an import goes down or stays in its layer, never up):

0. DSM's facts, errors, the wait loop, resources, project files
1. outside systems: the DSM Web API client, QEMU, Docker, the PAT download
2. what the build composes from them: the wizard, services, params, checkpoints, evidence
   (record and report), the consumers' pytest plugin
3. the pipeline (stages, plan, run, flatten, publish, plugins)
4. the notebooks' helpers and the command line

Every ``import`` counts, also inside functions and under ``TYPE_CHECKING``. vdsmlib never imports
the simulator (``vdsm_sim``). Run by ``make lint``::

    python tools/import_graph.py            # the graph, then OK or what is wrong; exit 1 if wrong
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from vdsmlib.checkpoints.fingerprints import imported_modules

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "vdsmlib"

#: bottom to top; each entry names a vdsmlib package or top-level module
LAYERS: tuple[tuple[str, ...], ...] = (
    ("vdsmlib", "dsm", "errors", "readiness", "resource", "project"),
    ("webapi", "qemu", "docker", "pat"),
    ("wizard", "services", "params", "checkpoints", "evidence", "testing"),
    ("pipeline",),
    ("notebook", "cli"),
)
#: packages vdsmlib must never import
FORBIDDEN = ("vdsm_sim",)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """``vdsmlib.pipeline.run`` -> ``pipeline``; ``vdsmlib`` -> ``vdsmlib``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph(root: Path = ROOT) -> dict[str, dict[str, list[str]]]:
    """``{package: {imported package: [importing module, ...]}}`` over vdsmlib (and imports of
    the forbidden packages, keyed by their own name)."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted((root / PACKAGE).rglob("*.py")):
        module = _module_name(path, root)
        for target in imported_modules(path, module, root / PACKAGE):
            top = target.split(".")[0]
            if top in FORBIDDEN:
                graph[package_of(module)][top].append(module)
            elif top == PACKAGE and package_of(target) != package_of(module):
                graph[package_of(module)][package_of(target)].append(module)
        graph.setdefault(package_of(module), defaultdict(list))
    return {k: dict(v) for k, v in graph.items()}


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def problems(
    graph: Mapping[str, Mapping[str, Sequence[str]]],
    layers: Sequence[Sequence[str]] = LAYERS,
) -> list[str]:
    """Every rule the graph breaks, one line each (empty: none)."""
    layer = {name: i for i, names in enumerate(layers) for name in names}
    lines = []
    for package in sorted(graph):
        if package not in layer:
            lines.append(f"{package}: in no layer (add it to LAYERS in tools/import_graph.py)")
    for package, targets in sorted(graph.items()):
        for target, modules in sorted(targets.items()):
            if target in FORBIDDEN:
                lines.append(f"{package} imports {target} ({modules[0]}): vdsmlib never does")
            elif package in layer and target in layer and layer[target] > layer[package]:
                lines.append(
                    f"{package} (layer {layer[package]}) imports {target} (layer "
                    f"{layer[target]}) in {', '.join(sorted(set(modules)))}: imports go down"
                )
    simple = {p: [t for t in ts if t not in FORBIDDEN] for p, ts in graph.items()}
    for component in cycles(simple):
        edges = [
            f"{a} -> {b} ({graph[a][b][0]})" for a in component for b in component if b in graph[a]
        ]
        lines.append(f"cycle between {', '.join(component)}: {'; '.join(edges)}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    args = parser.parse_args(argv)
    graph = package_graph(args.root)
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    for package in sorted(graph, key=lambda p: (layer.get(p, 99), p)):
        targets = ", ".join(sorted(graph[package])) or "-"
        print(f"  [{layer.get(package, '?')}] {package:<12} -> {targets}")
    found = problems(graph)
    for line in found:
        print(f"import graph: {line}", file=sys.stderr)
    if not found:
        print(f"import graph: {len(graph)} packages, no cycle, every import goes down")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
