"""DSM file services as desired state: what params declare (NFS, SMB, iSCSI, shares).

Data only (pydantic models, DSM's IQN form): params validate into these, :mod:`.api` makes DSM
match them through the Web API, :mod:`.dataplane` uses them as a client would.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "IQN_PREFIX",
    "SERVICE_ISCSI",
    "SERVICE_NFS",
    "SERVICE_SMB",
    "IscsiLunSpec",
    "IscsiSpec",
    "IscsiTargetSpec",
    "NfsRuleSpec",
    "ServicesSpec",
    "ShareSpec",
    "dsm_iqn",
]

GIB = 1024**3
_VOLUME_RE = re.compile(r"^/volume[0-9]+$")

SERVICE_NFS = "nfs-server"
SERVICE_SMB = "pkg-synosamba-smbd"
SERVICE_ISCSI = "pkg-iscsi"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IscsiTargetSpec(_Spec):
    """An iSCSI target; with ``iqn`` None it gets DSM's form (:func:`dsm_iqn`)."""

    name: str = Field(min_length=1, max_length=128)
    iqn: str | None = Field(default=None, pattern=r"^(iqn|eui|naa)\.\S+$")


class IscsiLunSpec(_Spec):
    """A thin-provisioned LUN of ``size_gb`` GiB on ``location``."""

    name: str = Field(min_length=1, max_length=128)
    size_gb: int = Field(gt=0)
    location: str = Field(default="/volume1", pattern=_VOLUME_RE.pattern)

    @property
    def size_bytes(self) -> int:
        """The size in bytes (GiB, as DSM counts)."""
        return self.size_gb * GIB


class IscsiSpec(_Spec):
    """A target and, optionally, a LUN mapped to it."""

    target: IscsiTargetSpec
    lun: IscsiLunSpec | None = None


class NfsRuleSpec(_Spec):
    """One NFS permission rule of a share (Control Panel > Shared Folder > NFS Permissions).

    DSM exports a shared folder over NFS only to the clients its rules name, so a share a
    client mounts needs one. The rule is saved through ``SYNO.Core.FileServ.NFS.SharePrivilege``
    in the shape synology-csi sends (``pkg/dsm/webapi/share.go``, ``PrivilegeRule``; its node
    plugin saves ``root_squash: "root"`` with ``insecure`` and ``crossmnt`` on, in
    ``pkg/driver/nodeserver.go``). ``insecure``: a client through the container's NAT and
    published ports comes from a port above 1023, which a "secure" rule refuses.
    """

    client: str = Field(default="*", min_length=1)
    privilege: Literal["rw", "ro"] = "rw"
    root_squash: Literal["root", "no_root_squash", "root_squash", "all", "all_squash"] = "root"
    insecure: bool = True
    crossmnt: bool = True
    async_: bool = Field(default=True, alias="async")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def as_dsm(self) -> dict[str, Any]:
        """The rule as DSM stores and returns it."""
        return {
            "async": self.async_,
            "client": self.client,
            "crossmnt": self.crossmnt,
            "insecure": self.insecure,
            "privilege": self.privilege,
            "root_squash": self.root_squash,
            "security_flavor": {
                "kerberos": False,
                "kerberos_integrity": False,
                "kerberos_privacy": False,
                "sys": True,
            },
        }

    def differences(self, have: dict[str, Any]) -> list[str]:
        """What of ``have`` (a rule DSM returned for the same client) differs from this rule."""
        wanted = self.as_dsm()
        return [
            f"{key} is {have.get(key)!r}, spec wants {wanted[key]!r}"
            for key in ("privilege", "root_squash", "insecure", "crossmnt", "async")
            if have.get(key) != wanted[key]
        ] + (
            []
            if (have.get("security_flavor") or {}).get("sys")
            else ["security_flavor sys is off, spec wants AUTH_SYS"]
        )


class ShareSpec(_Spec):
    """A shared folder; ``path`` is ``/volumeN/<name>`` (default ``/volume1/<name>``).

    ``nfs_rules``: the clients NFS serves it to (default: one read-write rule for every client,
    ``*``); they are saved only when the spec turns NFS on.
    """

    name: str = Field(min_length=1, max_length=32, pattern=r"^[^\s./\\][^/\\]*$")
    path: str | None = None
    nfs_rules: list[NfsRuleSpec] = Field(default_factory=lambda: [NfsRuleSpec()])

    @model_validator(mode="after")
    def _path_matches_name(self) -> Self:
        if self.path is None:
            object.__setattr__(self, "path", f"/volume1/{self.name}")
        volume, _, leaf = str(self.path).rpartition("/")
        if not _VOLUME_RE.match(volume) or leaf != self.name:
            raise ValueError(
                f"share path {self.path!r} must be /volumeN/{self.name} (DSM puts a shared "
                "folder at the top of a volume, named like the share)"
            )
        return self

    @property
    def vol_path(self) -> str:
        """The volume the share lives on (``/volume1``)."""
        return str(self.path).rpartition("/")[0]


class ServicesSpec(_Spec):
    """The file services a configured DSM must offer."""

    nfs: bool = True
    nfs_v4: bool = False
    smb: bool = True
    iscsi: IscsiSpec | None = None
    shares: list[ShareSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.nfs_v4 and not self.nfs:
            raise ValueError("nfs_v4 needs nfs: true")
        names = [s.name.lower() for s in self.shares]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"shares named twice (DSM ignores case): {duplicates}")
        return self


#: what every IQN of a target made on DSM starts with
IQN_PREFIX = "iqn.2000-01.com.synology:"
#: the longest IQN Synology's clients send
MAX_IQN_LENGTH = 128


def dsm_iqn(server_name: str, target_name: str) -> str:
    """The IQN in DSM's form: ``iqn.2000-01.com.synology:<server_name>.<target_name>``.

    As SynologyOpenSource/synology-csi makes it (pkg/dsm/service/dsm.go,
    ``createMappingTarget``): the server name DSM reports, ``_`` as ``-``, ``+`` as ``p``,
    at most 128 characters.

    >>> dsm_iqn("vdsm-ci", "ci_target")
    'iqn.2000-01.com.synology:vdsm-ci.ci-target'
    """
    iqn = f"{IQN_PREFIX}{server_name}.{target_name}".replace("_", "-").replace("+", "p")
    return iqn[:MAX_IQN_LENGTH]
