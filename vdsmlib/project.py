"""Where the project files are: ``params/``, ``notebooks/``, ``Dockerfile``, ``Dockerfile.flatten``.

The project directory is, in this order:

1. ``$VDSM_CI_HOME`` (``vdsm --project DIR`` sets it, so stage notebooks see it too);
2. the copy installed with the package (``vdsmlib/_project`` inside a wheel);
3. the source checkout the package is imported from (``pip install -e .`` or ``PYTHONPATH``).

::

    from vdsmlib.project import params_dir

    print(params_dir())   # /usr/lib/python3/site-packages/vdsmlib/_project/params
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from vdsmlib.errors import VdsmError

__all__ = [
    "HOME_ENV",
    "ProjectError",
    "notebooks_dir",
    "params_dir",
    "project_dir",
    "project_file",
]

HOME_ENV = "VDSM_CI_HOME"
"""Environment variable naming the project directory (a checkout, or a copy of its files)."""

#: what a project directory holds; ``project_file`` and the checks below use these names
_MARKERS = ("params", "notebooks", "Dockerfile", "Dockerfile.flatten")


class ProjectError(VdsmError):
    """The project directory (params, notebooks, Dockerfiles) cannot be found."""


def _is_project(path: Path) -> bool:
    return all((path / name).exists() for name in _MARKERS)


def _installed() -> Path:
    return Path(str(resources.files("vdsmlib"))) / "_project"


def _checkout() -> Path:
    # The package folder's parent is the checkout when vdsmlib is imported from source.
    return Path(str(resources.files("vdsmlib"))).resolve().parent


def project_dir() -> Path:
    """The project directory; raises :class:`ProjectError` saying how to name one."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        path = Path(explicit).expanduser().resolve()
        if not _is_project(path):
            raise ProjectError(
                f"{HOME_ENV}={explicit} is not a vdsm-ci project directory (it needs "
                f"{', '.join(_MARKERS)}): point it at a checkout of vdsm-ci"
            )
        return path
    for candidate in (_installed(), _checkout()):
        if _is_project(candidate):
            return candidate
    raise ProjectError(
        "cannot find the vdsm-ci project files (params/, notebooks/, Dockerfiles): reinstall "
        f"vdsmlib from its wheel, or set {HOME_ENV} (vdsm --project DIR) to a vdsm-ci checkout"
    )


def project_file(name: str) -> Path:
    """A file or folder of the project directory, e.g. ``project_file("Dockerfile.flatten")``."""
    return project_dir() / name


def params_dir() -> Path:
    """``params/``: one YAML per target and ``profiles/``."""
    return project_file("params")


def notebooks_dir() -> Path:
    """``notebooks/``: ``build.ipynb`` and one notebook per stage."""
    return project_file("notebooks")
