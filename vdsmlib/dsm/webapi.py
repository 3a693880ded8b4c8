"""The DSM Web API catalogue: which APIs DSM 7.2.2 lists, where, and in which versions.

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

__all__ = [
    "CATALOGUE",
    "LOGIN_MIN_VERSION",
    "READY_API",
    "ApiEntry",
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


#: DSM 7.2.2's versions of the APIs that verify a configured DSM.
CATALOGUE: dict[str, ApiEntry] = {
    "SYNO.API.Info": ApiEntry("query.cgi", 1, 1),
    "SYNO.API.Auth": ApiEntry("entry.cgi", 1, 7),
    "SYNO.Core.FileServ.NFS": ApiEntry("entry.cgi", 1, 3, "JSON"),
    "SYNO.Core.FileServ.SMB": ApiEntry("entry.cgi", 1, 3, "JSON"),
    "SYNO.Core.Service": ApiEntry("entry.cgi", 1, 3, "JSON"),
    "SYNO.Core.Storage.Volume": ApiEntry("entry.cgi", 1, 1, "JSON"),
    "SYNO.Core.System": ApiEntry("entry.cgi", 1, 3, "JSON"),
    "SYNO.DSM.Info": ApiEntry("entry.cgi", 1, 2),
    "SYNO.Core.Share": ApiEntry("entry.cgi", 1, 1, "JSON"),
    "SYNO.Core.ISCSI.LUN": ApiEntry("entry.cgi", 1, 1, "JSON"),
    "SYNO.Core.ISCSI.Target": ApiEntry("entry.cgi", 1, 1, "JSON"),
    # What the Synology CSI driver calls besides (SynologyOpenSource/synology-csi
    # pkg/dsm/webapi/share.go, systeminfo.go): it uses version 1, and 2 of Share.Snapshot list.
    "SYNO.Core.Share.Snapshot": ApiEntry("entry.cgi", 1, 2, "JSON"),
    "SYNO.Core.Share.Permission": ApiEntry("entry.cgi", 1, 1, "JSON"),
    "SYNO.Core.FileServ.NFS.SharePrivilege": ApiEntry("entry.cgi", 1, 1, "JSON"),
    "SYNO.Core.Network.Interface": ApiEntry("entry.cgi", 1, 1, "JSON"),
    # DSM 7's login: the login-parameter cipher and the login page's handshake.
    "SYNO.API.Encryption": ApiEntry("encryption.cgi", 1, 1),
    "SYNO.API.Auth.UIConfig": ApiEntry("entry.cgi", 1, 1),
    "SYNO.API.Auth.Key": ApiEntry("entry.cgi", 1, 7),
    "SYNO.API.Auth.Type": ApiEntry("entry.cgi", 1, 1),
    # What monitoring clients read first.
    "SYNO.FileStation.Info": ApiEntry("entry.cgi", 1, 2),
    "SYNO.FileStation.List": ApiEntry("entry.cgi", 1, 2),
    "SYNO.DSM.Network": ApiEntry("entry.cgi", 1, 2),
    "SYNO.Storage.CGI.Storage": ApiEntry("entry.cgi", 1, 1, "JSON"),
    "SYNO.Core.System.Utilization": ApiEntry("entry.cgi", 1, 1, "JSON"),
}

#: Login needs ``SYNO.API.Auth`` version 3 or later; below that DSM answers 103.
LOGIN_MIN_VERSION = 3

#: The API whose listing means "DSM is up": port 5000 answers long before DSM does.
READY_API = "SYNO.API.Auth"
