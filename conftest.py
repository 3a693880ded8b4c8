"""Markers for the smoke notebooks that nbmake collects.

Each notebook under ``notebooks/smoke`` declares what it needs in its metadata, e.g.
``"vdsm_ci": {"markers": ["docker", "browser"]}`` (``[]`` for none). The markers are added
before ``-m`` deselects, so ``make unit`` (``-m "not docker and not browser and not qemu"``)
leaves such a notebook out like any other test that needs Docker.
"""

from __future__ import annotations

import json
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
