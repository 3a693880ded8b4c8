"""The DSM Web API catalogue: which APIs DSM 7 lists, where, and in which versions.

From shared/facts dsm-webapi.md ("Discovery", "Login"): ``SYNO.API.Info`` answers
``{"<API>": {"path": ..., "minVersion": N, "maxVersion": M[, "requestFormat": "JSON"]}}``, and an
API is listed only while its package runs.

Example::

    >>> CATALOGUE["SYNO.API.Auth"].max_version
    7
    >>> CATALOGUE["SYNO.Core.FileServ.NFS"].supports(2)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from .captured_catalogue import CAPTURED

__all__ = [
    "CATALOGUE",
    "LOGIN_MIN_VERSION",
    "PACKAGE_PREFIXES",
    "READY_API",
    "ApiEntry",
    "is_package_api",
]


@dataclass(frozen=True)
class ApiEntry:
    """One API as ``SYNO.API.Info`` lists it."""

    path: str
    min_version: int
    max_version: int
    request_format: str | None = None

    def supports(self, version: int) -> bool:
        """True if DSM accepts ``version`` of this API."""
        return self.min_version <= version <= self.max_version

    def info(self) -> dict[str, object]:
        """The entry as ``SYNO.API.Info`` answers it."""
        entry: dict[str, object] = {
            "path": self.path,
            "minVersion": self.min_version,
            "maxVersion": self.max_version,
        }
        if self.request_format:
            entry["requestFormat"] = self.request_format
        return entry


#: Name prefixes of the APIs of packages a DSM installs separately (Package Center): a DSM
#: without them lists none of these and answers 102 for them. The capture below was taken on a
#: DiskStation that had them. Which prefix is which package: Synology's package names (Photos:
#: Foto, FotoTeam; Download Station; Surveillance Station; Virtual Machine Manager:
#: Virtualization, VMMDR; Hyper Backup: Backup, C2FS; Synology Drive; Active Backup for
#: Business; MailPlus, Mail Station, Contacts, Calendar; Web Station; Text Editor; Audio and
#: Video Station; Universal Search: Finder; Snapshot Replication: DR, DisasterRecovery, S2S,
#: Lunbackup; Active Insight; Advanced Media Extensions: AME; Synology Office's and cluster
#: products' CCC, HCI, SAS).
PACKAGE_PREFIXES = (
    "SYNO.AME.",
    "SYNO.ActiveBackup",
    "SYNO.ActiveInsight.",
    "SYNO.AddressBook.",
    "SYNO.AudioPlayer",
    "SYNO.Backup.",
    "SYNO.C2FS.",
    "SYNO.CCC.",
    "SYNO.Cal.",
    "SYNO.Contacts.",
    "SYNO.DR.",
    "SYNO.DisasterRecovery.",
    "SYNO.DownloadStation",
    "SYNO.Finder.",
    "SYNO.Foto",
    "SYNO.HCI.",
    "SYNO.Lunbackup",
    "SYNO.MailClient.",
    "SYNO.MailPlusServer.",
    "SYNO.PersonMailAccount",
    "SYNO.S2S.",
    "SYNO.SAS.",
    "SYNO.SurveillanceStation",
    "SYNO.SynologyDrive",
    "SYNO.TextEditor",
    "SYNO.VMMDR.",
    "SYNO.VideoPlayer",
    "SYNO.Virtualization.",
    "SYNO.WebStation.",
)


def is_package_api(name: str) -> bool:
    """True if ``name`` belongs to a package DSM installs separately (see PACKAGE_PREFIXES)."""
    return name.startswith(PACKAGE_PREFIXES)


#: What a DSM 7 without extra packages lists: the recorded real-DSM catalogue
#: (:mod:`vdsmlib.dsm.captured_catalogue`, names, paths and versions as recorded) less the
#: packages' APIs.
CATALOGUE: dict[str, ApiEntry] = {
    name: ApiEntry(*entry) for name, entry in CAPTURED.items() if not is_package_api(name)
}

#: Login needs ``SYNO.API.Auth`` version 3 or later; below that DSM answers 103.
LOGIN_MIN_VERSION = 3

#: The API whose listing means "DSM is up": port 5000 answers long before DSM does.
READY_API = "SYNO.API.Auth"
