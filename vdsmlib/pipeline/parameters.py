"""The one mapping from a build's parameters to a :class:`~vdsmlib.pipeline.run.Build`.

``notebooks/build.ipynb``, ``make build`` (its no-op check, :mod:`vdsmlib.cli.make`),
``vdsm build`` and a notebook's resume all call :func:`build_from_parameters`, so the same
parameters make the same build wherever they are given.

    build = build_from_parameters({"dsm_version": "sim", "no_cache": True})
    record = await build.run()
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vdsmlib.params import check_notebook_parameters
from vdsmlib.pipeline.run import Build

__all__ = ["BUILD_OPTIONS", "build_from_parameters"]

#: parameters that say how to build; every other parameter (``admin_user``, ``sim_knobs``,
#: ``cache_repository``, ...) overrides the target's params
BUILD_OPTIONS = ("dsm_version", "no_cache", "from_checkpoint", "keep", "executor", "out_dir")


def build_from_parameters(
    values: Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    params_dir: str | Path | None = None,
) -> Build:
    """The build of ``values``: the build notebook's parameters (see
    :data:`vdsmlib.params.NOTEBOOK_PARAMETERS`; unknown names and non-boolean ``no_cache`` or
    ``keep`` are refused before anything starts). ``overrides``: more params overrides than the
    notebook names (``vdsm build -p vm='{ram: 4G}'``, or a run's own when it is resumed);
    ``params_dir``: where the targets are (default: the project's ``params/``). ``explore`` is
    not a build parameter: the notebook handles it.
    """
    check_notebook_parameters(values)
    given = {k: v for k, v in values.items() if k not in BUILD_OPTIONS and k != "explore"}
    merged = {k: v for k, v in given.items() if not k.startswith("_")}
    if merged.get("sim_knobs") == {}:
        merged["sim_knobs"] = None
    merged.update(overrides or {})
    return Build(
        values.get("dsm_version", "sim"),
        merged,
        out_dir=Path(values.get("out_dir") or "out"),
        params_dir=params_dir,
        no_cache=bool(values.get("no_cache", False)),
        from_checkpoint=values.get("from_checkpoint") or None,
        keep=bool(values.get("keep", False)),
        executor=values.get("executor") or "notebook",
    )
