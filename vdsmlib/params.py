"""Build parameters: one YAML per target under ``params/``, validated once into :class:`Params`.

A target is a DSM version (``7.2.2``, ``7.3.2``, ...) or the built-in simulator (``sim``). The
YAML files hold everything that differs between targets: where the base image comes from, the PAT,
the wizard profile, VM sizing, timeouts, and the desired services. Nothing downstream re-parses
strings: the pipeline reads typed fields only.

Example::

    params = load_params("sim", overrides={"admin_password": "S3cure-Passw0rd"})
    params.profile          # 'dsm-7.2.2'
    params.vm.cpu_model     # 'qemu64'

``papermill -p dsm_version 7.2`` delivers the float ``7.2`` and ``-p build 72806`` an int;
:func:`coerce_version` turns both back into the strings the files are named by.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vdsmlib import project
from vdsmlib.dsm import policy
from vdsmlib.errors import VdsmError
from vdsmlib.services.spec import ServicesSpec

__all__ = [
    "NOTEBOOK_PARAMETERS",
    "AdminSpec",
    "BaseSpec",
    "ImageSpec",
    "Params",
    "ParamsError",
    "PatParams",
    "RunSpec",
    "Timeouts",
    "VmSpec",
    "available_targets",
    "check_notebook_parameters",
    "check_repository",
    "coerce_version",
    "load_params",
]

log = logging.getLogger(__name__)


class ParamsError(VdsmError):
    """The build parameters are invalid (unknown version, weak password, bad value, ...)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseSpec(_Strict):
    """Where the virtual-dsm compatible image comes from and how to make it snapshot-ready."""

    #: ``sim-build``: the simulator image, built locally; ``registry``: a pinned image to pull.
    source: Literal["sim-build", "registry"]
    #: image reference; for ``registry`` it should carry a digest (``repo@sha256:...``).
    image: str
    #: the script of the base image that attaches the boot and system disks.
    patch_file: str = "/run/prepare.sh"
    #: base name of the disks in /storage (``<base>.boot.img``, ``<base>.system.img``).
    disk_base: str
    #: the guest's address inside the container in NAT mode (virtual-dsm's ``VM_NET_IP``,
    #: fixed at 20.20.20.21 up to 7.41): the final image's health check reaches DSM there when
    #: ``/run/shm/dsm.url`` is absent (after a restore).
    guest_address: str = Field(
        default="20.20.20.21",
        pattern=r"^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$",
    )

    #: QEMU version the pinned base image ships (``10.0`` for virtual-dsm 7.41, Debian
    #: trixie's); the simulator's QEMU must have the same major version (a test checks it).
    qemu_version: str | None = None

    @field_validator("qemu_version")
    @classmethod
    def _qemu_version(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9]+(\.[0-9]+){0,2}", value):
            raise ValueError(f"{value!r} is not a QEMU version like 10.0")
        return value


class PatParams(_Strict):
    """The DSM install image (.pat) for a real-DSM target."""

    url: str
    size: int | None = None
    sha256: str | None = None


class VmSpec(_Strict):
    """Guest sizing and the CPU/machine settings that a snapshot is tied to."""

    ram: str = "2G"
    cpu_cores: int = 2
    cpu_model: str = "Westmere,-invtsc"
    machine: str = "q35"
    disk_size: str = "16G"
    #: ``auto`` probes KVM by booting a small guest and falls back to TCG.
    accelerator: Literal["auto", "kvm", "tcg"] = "auto"

    @field_validator("ram", "disk_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not re.fullmatch(r"[1-9][0-9]*[MGT]", value):
            raise ValueError(f"{value!r} is not a size like 512M or 2G")
        return value


class RunSpec(_Strict):
    """Extra ``docker run`` settings the base image needs (never ``--privileged``)."""

    devices: list[str] = Field(default_factory=list)
    cap_add: list[str] = Field(default_factory=list)


class Timeouts(_Strict):
    """Seconds to wait for the slow parts; real DSM needs far more than the simulator."""

    #: cold boot (DSM installs) until the Web API answers
    boot: float = 1200.0
    #: saving a checkpoint (the migration into its state file; the key keeps its older name)
    savevm: float = 600.0
    #: a restored checkpoint (or the final image) until the Web API answers
    restore: float = 300.0
    #: the final image's health check: how long one login to DSM may take
    health: float = 8.0
    #: one Web API request of a stage (services, checks): some start DSM's file servers
    request: float = 30.0
    #: how much longer everything takes under TCG (software emulation) than under KVM: every
    #: timeout above is multiplied by it for a build under TCG (:meth:`for_accelerator`). Real
    #: DSM: 10 (virtual-dsm v7.41 src/proc.sh: "about 10 times slower"); the simulator's
    #: timeouts are already TCG's (1).
    tcg_factor: float = Field(default=1.0, ge=1.0)

    def for_accelerator(self, accelerator: str) -> Timeouts:
        """These timeouts for a build under ``accelerator`` (``kvm`` or ``tcg``).

        >>> Timeouts(boot=1800, tcg_factor=10).for_accelerator("tcg").boot
        18000.0
        >>> Timeouts(boot=1800, tcg_factor=10).for_accelerator("kvm").boot
        1800.0
        """
        if accelerator != "tcg" or self.tcg_factor == 1.0:
            return self
        factor = self.tcg_factor
        return Timeouts(
            boot=self.boot * factor,
            savevm=self.savevm * factor,
            restore=self.restore * factor,
            health=self.health * factor,
            request=self.request * factor,
            tcg_factor=1.0,  # scaled once: scaling the result again changes nothing
        )


class AdminSpec(_Strict):
    server_name: str = "vdsm-ci"
    user: str = "vdsm"
    password: str = Field(repr=False)


# A Docker repository reference without tag or digest (distribution/reference's grammar): an
# optional registry host[:port], then lowercase path components separated by "/".
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"(?:{_HOST}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*")


def check_repository(value: str, name: str = "image_repository") -> str:
    """``value`` if it is a valid repository reference (``REGISTRY/REPO``, no tag), else raise."""
    if len(value) > 255 or not _REPOSITORY.fullmatch(value):
        raise ValueError(
            f"{name} {value!r} is not a Docker repository reference: use lowercase "
            "[REGISTRY[:PORT]/]NAME[/NAME...] without a tag, e.g. ghcr.io/me/vdsm-configured"
        )
    return value


class ImageSpec(_Strict):
    """Naming of the final image: ``<repository>:<version>-<variant>`` and a pinned tag."""

    repository: str = "ghcr.io/vdsm-ci/vdsm-configured"
    #: registry repository for checkpoints (``REGISTRY/REPO``): pushed after each checkpoint,
    #: pulled by a build whose engine lacks a matching one. None: local checkpoints only.
    cache_repository: str | None = None

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        return check_repository(value, "image_repository")

    @field_validator("cache_repository")
    @classmethod
    def _cache_repository(cls, value: str | None) -> str | None:
        return None if value is None else check_repository(value, "cache_repository")


class Params(_Strict):
    """Every parameter of one build, validated."""

    dsm_version: str
    #: DSM version string as DSM reports it, e.g. ``7.2.2-72806``.
    dsm_release: str
    description: str = ""
    base: BaseSpec
    pat: PatParams | None = None
    profile: str
    vm: VmSpec = VmSpec()
    timeouts: Timeouts = Timeouts()
    admin: AdminSpec
    services: ServicesSpec = ServicesSpec()
    #: how NFS is switched on: through the Web API, or clicked through Control Panel like a user.
    nfs_via: Literal["api", "ui"] = "api"
    #: extra environment of the base container (simulator knobs, virtual-dsm settings).
    env: dict[str, str] = Field(default_factory=dict)
    run: RunSpec = RunSpec()
    image: ImageSpec = ImageSpec()
    #: where wizard profiles are looked up, first match wins (set by :func:`load_params`)
    profile_dirs: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        """``sim`` for the simulator, ``dsm`` for a real DSM release."""
        return "sim" if self.base.source == "sim-build" else "dsm"

    def public_dict(self) -> dict[str, Any]:
        """The parameters with secrets masked, for records and notebook output."""
        data = self.model_dump(mode="json")
        data["admin"]["password"] = "***"
        return data


def coerce_version(value: object) -> str:
    """Turn what papermill delivers for ``-p dsm_version ...`` back into a version string.

    >>> coerce_version(7.2)
    '7.2'
    >>> coerce_version("7.2.2")
    '7.2.2'
    """
    if isinstance(value, bool) or value is None:
        raise ParamsError(f"dsm_version must be a version such as 7.2.2 or 'sim', got {value!r}")
    version = repr(value) if isinstance(value, float) else str(value).strip()
    if not _TARGET_NAME.fullmatch(version):
        raise ParamsError(
            f"dsm_version must be a target name (letters, digits, dots, dashes) such as 7.2.2 "
            f"or sim, not a path: got {version!r}; targets are the files in params/"
        )
    return version


#: what a target is called: the stem of a file in params/, never a path
_TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")


def closest_target(version: str, targets: list[str]) -> str | None:
    """The target meant by ``version``: the newest ``7.2.x`` for ``7.2``, else the closest name.

    >>> closest_target("7.2", ["7.1.1", "7.2.1", "7.2.2", "sim"])
    '7.2.2'
    >>> closest_target("7.3.1", ["7.1.1", "7.2.2", "7.3.2", "sim"])
    '7.3.2'
    """
    import difflib

    def key(target: str) -> tuple[int, ...]:
        return tuple(int(n) if n.isdigit() else -1 for n in target.split("."))

    within = [t for t in targets if t.startswith(f"{version}.")]
    if within:
        return max(within, key=key)
    close = difflib.get_close_matches(version, targets, n=1, cutoff=0.5)
    return close[0] if close else None


def available_targets(params_dir: Path | None = None) -> list[str]:
    """The targets that have a params file, e.g. ``['7.1.1', '7.2.1', '7.2.2', '7.3.2', 'sim']``."""
    return sorted(p.stem for p in (params_dir or project.params_dir()).glob("*.yaml"))


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


#: flat override names (papermill parameters) and where they go in the params tree.
_FLAT_OVERRIDES: dict[str, tuple[str, ...]] = {
    "admin_user": ("admin", "user"),
    "admin_password": ("admin", "password"),
    "server_name": ("admin", "server_name"),
    "accelerator": ("vm", "accelerator"),
    "image_repository": ("image", "repository"),
    "cache_repository": ("image", "cache_repository"),
    "pat_url": ("pat", "url"),
}


def _apply_flat(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None or value == "":
            continue  # papermill parameters left at their default mean "use the params file"
        if key in _FLAT_OVERRIDES:
            path = _FLAT_OVERRIDES[key]
            node = nested
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = str(value)
        elif key == "sim_knobs":
            if not isinstance(value, Mapping):
                raise ParamsError(
                    f"sim_knobs must be a mapping such as {{SIM_SCREEN_SEED: '7'}}, got {value!r}"
                )
            nested.setdefault("env", {}).update({str(k): str(v) for k, v in value.items()})
        elif key == "env":
            nested.setdefault("env", {}).update({str(k): str(v) for k, v in dict(value).items()})
        else:
            nested[key] = value
    return _merge(data, nested)


#: The parameters notebooks/build.ipynb declares, and their types (a unit test keeps them equal).
NOTEBOOK_PARAMETERS: dict[str, type | tuple[type, ...]] = {
    "dsm_version": (str, int, float),
    "admin_user": str,
    "admin_password": str,
    "server_name": str,
    "sim_knobs": dict,
    "accelerator": str,
    "no_cache": bool,
    "from_checkpoint": str,
    "keep": bool,
    "explore": str,
    "image_repository": str,
    "cache_repository": str,
    "executor": str,
    "out_dir": str,
}


def check_notebook_parameters(values: Mapping[str, Any]) -> None:
    """Refuse unknown papermill parameters and values of the wrong type, before any container.

    ``values`` holds the names the parameters cell and papermill's injected cell defined (the
    notebook passes what appeared in its globals since its first cell). ``-p no_cache maybe``
    reaches the kernel as the string ``"maybe"``: only ``True``/``False`` are booleans here.
    """
    unknown = sorted(k for k in values if k not in NOTEBOOK_PARAMETERS and not k.startswith("_"))
    if unknown:
        raise ParamsError(
            f"unknown parameter(s) {', '.join(unknown)}: build.ipynb takes "
            f"{', '.join(NOTEBOOK_PARAMETERS)} (see `papermill --help-notebook build.ipynb`)"
        )
    for name, kind in NOTEBOOK_PARAMETERS.items():
        if name not in values:
            continue
        value = values[name]
        if kind is bool:
            check_bool(name, value)
        elif kind is dict and value is not None and not isinstance(value, Mapping):
            raise ParamsError(f"{name} must be a mapping such as {{K: V}}, got {value!r}")
        elif kind is str and value is not None and not isinstance(value, str):
            raise ParamsError(f"{name} must be a string, got {value!r} (pass it with -r)")


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a boolean; anything else (``"maybe"``, ``"yes"``, ``1``) is refused."""
    if not isinstance(value, bool):
        raise ParamsError(
            f"{name} must be true or false, got {value!r} (papermill: -p {name} True or -p "
            f"{name} False)"
        )
    return value


def _check_policy(admin: AdminSpec) -> None:
    problems = [
        *(f"server name: {p}" for p in policy.check_server_name(admin.server_name)),
        *(f"admin user: {p}" for p in policy.check_user_name(admin.user)),
        *(f"admin password: {p}" for p in policy.check_password(admin.password, admin.user)),
    ]
    if problems:
        raise ParamsError(
            "DSM would reject the admin account: "
            + "; ".join(problems)
            + " (fix admin_user / admin_password / server_name and run again)"
        )


def _refuse_empty_password(overrides: Mapping[str, Any]) -> None:
    """An empty password given on purpose is an unset CI secret, not a wish for the default.

    Left out (``None``, the build notebook's default), the params file's password is used;
    given empty (``-r admin_password "$SECRET"``, ``-f``, ``VDSM_ADMIN_PASSWORD=$SECRET`` with
    the secret unset), the build would quietly get the documented public default.
    """
    if overrides.get("admin_password") == "":
        raise ParamsError(
            "admin_password is empty (an unset CI secret?): give the password, or leave the "
            "parameter out to use the one in the params file"
        )
    if os.environ.get("VDSM_ADMIN_PASSWORD") == "":
        raise ParamsError(
            "VDSM_ADMIN_PASSWORD is set but empty (an unset CI secret?): set it to the "
            "password, or unset it to use the one in the params file"
        )


def load_params(
    dsm_version: object = "sim",
    overrides: Mapping[str, Any] | None = None,
    *,
    params_dir: Path | None = None,
) -> Params:
    """Load ``params/<dsm_version>.yaml``, apply overrides, and validate everything.

    ``overrides`` take flat papermill-style names (``admin_password``, ``sim_knobs``, ...) or
    nested sections (``{"vm": {"ram": "1G"}}``). Raises :class:`ParamsError` with one line that
    says what to change.
    """
    version = coerce_version(dsm_version)
    default_dir = project.params_dir()
    params_dir = params_dir or default_dir
    path = params_dir / f"{version}.yaml"
    if not path.is_file():
        targets = available_targets(params_dir)
        closest = closest_target(version, targets)
        hint = f"; did you mean {closest}? (-p dsm_version {closest})" if closest else ""
        raise ParamsError(
            f"unknown dsm_version {version!r}: no {path.name} in {params_dir} (known: "
            f"{', '.join(targets) or 'none'}){hint}"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ParamsError(f"{path} must hold a mapping at the top level")
    overrides = dict(overrides or {})
    _refuse_empty_password(overrides)
    if not overrides.get("admin_password") and os.environ.get("VDSM_ADMIN_PASSWORD"):
        # papermill writes -p values into the executed notebook; the environment stays out of it
        overrides["admin_password"] = os.environ["VDSM_ADMIN_PASSWORD"]
    data = _apply_flat(data, overrides)
    data["dsm_version"] = version
    dirs = [params_dir / "profiles", default_dir / "profiles"]
    data["profile_dirs"] = tuple(dict.fromkeys(str(d) for d in dirs if d.is_dir()))
    try:
        params = Params.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ParamsError(
            f"{path.name}: {where}: {first['msg']} ({err.error_count()} problem(s) in all)"
        ) from err
    _check_policy(params.admin)
    if not any((Path(d) / params.profile).is_dir() for d in params.profile_dirs):
        raise ParamsError(
            f"{path.name}: profile {params.profile!r} has no folder in "
            f"{' or '.join(params.profile_dirs) or params_dir / 'profiles'}"
        )
    return params
