"""Small registries filled through entry points, so the pipeline names no implementation.

Three groups, declared in a distribution's ``pyproject.toml`` (vdsmlib's own declares the DSM
simulator's: ``base.source: sim-build``, its KVM probe image and ``vdsm sim``)::

    [project.entry-points."vdsmlib.base_sources"]   # params: base.source
    my-source = "mypkg.images:upstream_image"        # (client, params) -> image reference
    [project.entry-points."vdsmlib.kvm_probe_images"]
    my-probe = "mypkg.images:probe_image"            # (client) -> (image reference, QEMU version)
    [project.entry-points."vdsmlib.cli"]
    my-command = "mypkg.cli:add_subcommands"         # (argparse subparsers) -> None

``register(group, name, obj)`` adds one in-process (tests, notebooks); it wins over an entry
point of the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from vdsmlib.errors import VdsmError

if TYPE_CHECKING:
    import argparse

    import docker

    from vdsmlib.params import Params

__all__ = [
    "BASE_SOURCES",
    "CLI",
    "KVM_PROBE_IMAGES",
    "PluginError",
    "base_source",
    "cli_plugins",
    "kvm_probe_image",
    "load",
    "register",
]

BASE_SOURCES = "vdsmlib.base_sources"
KVM_PROBE_IMAGES = "vdsmlib.kvm_probe_images"
CLI = "vdsmlib.cli"


class BaseSource(Protocol):
    """``source(client, params)``: the upstream image's reference, made (built, pulled) when
    missing; with ``make=False`` None instead of making it (a no-op check makes nothing)."""

    def __call__(
        self, client: docker.DockerClient, params: Params, *, make: bool = True
    ) -> str | None: ...


class ProbeImage(Protocol):
    """``provider(client)``: an image that runs the KVM probe, and its QEMU version; with
    ``make=False`` None when it would have to be built."""

    def __call__(
        self, client: docker.DockerClient, *, make: bool = True
    ) -> tuple[str, str] | None: ...


CliPlugin = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

_registered: dict[str, dict[str, Any]] = {}


class PluginError(VdsmError):
    """No plugin of that name is registered (or it failed to import)."""


def register(group: str, name: str, obj: Any) -> None:
    """Register ``obj`` as ``name`` in ``group`` for this process."""
    _registered.setdefault(group, {})[name] = obj


def load(group: str) -> dict[str, Any]:
    """Every plugin of ``group``: entry points of installed distributions, then registrations."""
    found: dict[str, Any] = {}
    for ep in entry_points(group=group):
        try:
            found[ep.name] = ep.load()
        except ImportError as err:
            raise PluginError(f"plugin {ep.name!r} of {group} ({ep.value}) fails: {err}") from err
    found.update(_registered.get(group, {}))
    return found


def _missing(group: str, name: str, known: dict[str, Any]) -> PluginError:
    return PluginError(
        f"no {group} plugin named {name!r} (known: {', '.join(sorted(known)) or 'none'}); "
        "if it ships with vdsmlib, reinstall the package (pip install -e . in a checkout) so its "
        "entry points are registered"
    )


def base_source(name: str, builtin: dict[str, BaseSource] | None = None) -> BaseSource:
    """The ``base.source`` named ``name``: a built-in one, else a registered plugin."""
    if builtin and name in builtin:
        return builtin[name]
    known = {**(builtin or {}), **load(BASE_SOURCES)}
    if name not in known:
        raise _missing(BASE_SOURCES, name, known)
    source: BaseSource = known[name]
    return source


def kvm_probe_image(client: docker.DockerClient, *, make: bool = True) -> tuple[str, str] | None:
    """An image that can run the KVM probe, and its QEMU version, from the first plugin
    (``make=False``: None when it is not there yet)."""
    known = load(KVM_PROBE_IMAGES)
    if not known:
        raise _missing(KVM_PROBE_IMAGES, "any", known)
    provider: ProbeImage = known[sorted(known)[0]]
    return provider(client, make=make)


def cli_plugins() -> dict[str, CliPlugin]:
    """Subcommand plugins of the ``vdsm`` command, by name."""
    return load(CLI)
