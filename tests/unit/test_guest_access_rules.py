"""How the simulated DSM turns share permissions and NFS rules into server settings."""

from __future__ import annotations

from typing import Any

import pytest
from vdsm_sim.guest.dataplane import _admin_access, _export_options


def _perm(**flags: bool) -> dict[str, bool]:
    return {k: flags.get(k, False) for k in ("is_readonly", "is_writable", "is_deny", "is_custom")}


@pytest.mark.parametrize(
    ("permissions", "access"),
    [
        ({}, "rw"),  # a new share: Read/Write for administrators
        ({"local_user": {"vdsm": _perm(is_readonly=True)}}, "rw"),  # the group's rw wins
        (
            {
                "local_user": {"vdsm": _perm(is_readonly=True)},
                "local_group": {"administrators": _perm(is_readonly=True)},
            },
            "ro",
        ),
        ({"local_user": {"vdsm": _perm(is_deny=True, is_writable=True)}}, "deny"),
        ({"system": {"everyone": _perm(is_deny=True)}}, "deny"),  # No access wins
        ({"local_group": {"administrators": _perm()}}, "deny"),  # nothing given
        ({"local_user": {"other": _perm(is_deny=True)}}, "rw"),
    ],
)
def test_admin_access_as_dsm_reckons_user_and_groups(
    permissions: dict[str, dict[str, dict[str, Any]]], access: str
) -> None:
    assert _admin_access(permissions, "vdsm") == access


def test_export_options_of_the_csi_drivers_rule() -> None:
    # synology-csi pkg/driver/nodeserver.go setNFSVolumePrivilege
    rule = {"privilege": "rw", "async": True, "insecure": True, "root_squash": "root"}
    assert _export_options(rule) == "rw,async,insecure,no_root_squash,no_subtree_check"
    strict = {"privilege": "ro", "async": False, "insecure": False, "root_squash": "all"}
    assert _export_options(strict) == "ro,sync,secure,all_squash,no_subtree_check"
