"""ServicesSpec apply/verify against the real simulated DSM (7.2.2 and 7.3.2 token rules)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError
from sim_dsm import ADMIN_PASSWORD, ADMIN_USER, Sim

from vdsmlib.services import ServicesMismatch, ServicesSpec, apply, verify
from vdsmlib.webapi import DsmClient, WebApiError

FULL = ServicesSpec.model_validate(
    {
        "nfs": True,
        "nfs_v4": True,
        "smb": True,
        "iscsi": {
            "target": {"name": "ci-target", "iqn": "iqn.2000-01.com.synology:vdsm.ci"},
            "lun": {"name": "ci-lun", "size_gb": 2},
        },
        "shares": [{"name": "ci"}, {"name": "media", "path": "/volume1/media"}],
    }
)


def _apply_twice_and_verify(sim: Sim, *, syno_token: bool = True) -> None:
    with DsmClient(sim.url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as session:
        first = apply(session, FULL)
        assert first.changed
        assert "nfs: enable_nfs false -> true" in first.changes
        assert "nfs: enable_nfs_v4 false -> true" in first.changes
        assert "share ci: created on /volume1" in first.changes
        assert any(c.startswith("iscsi lun ci-lun: mapped") for c in first.changes)
        assert first.lun_uuid and first.target_id
        # SMB is on in a fresh DSM 7: nothing to do.
        assert "smb: enable_samba true" in first.unchanged

        passed = verify(session, FULL)
        assert "service nfs-server enabled = True" in passed

        second = apply(session, FULL)
        assert second.changes == []
        assert (second.lun_uuid, second.target_id) == (first.lun_uuid, first.target_id)
        verify(session, FULL)

    state = sim.state()
    assert state["enable_nfs"] is True
    assert state["shares"] == ["ci", "media"]
    assert state["luns"] == ["ci-lun"]
    assert state["targets"] == ["ci-target"]


def test_apply_is_idempotent_and_verifies(sim: Sim) -> None:
    _apply_twice_and_verify(sim)


def test_apply_with_synotoken_enforced(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory(SIM_REQUIRE_SYNOTOKEN="1")
    assert sim.state()["require_synotoken"] is True
    _apply_twice_and_verify(sim)


def test_apply_without_token_fails_when_dsm_enforces_it(
    sim_factory: Callable[..., Sim],
) -> None:
    sim = sim_factory(SIM_REQUIRE_SYNOTOKEN="1")
    with (
        DsmClient(sim.url) as dsm,
        dsm.login(ADMIN_USER, ADMIN_PASSWORD, syno_token=False) as session,
    ):
        with pytest.raises(WebApiError) as exc:
            apply(session, FULL)
        assert exc.value.code == 119
        # Reads still work without the token: verify reports the differences.
        with pytest.raises(ServicesMismatch):
            verify(session, FULL)
    assert sim.state()["enable_nfs"] is False


def test_smb_partial_object_is_refused_by_732(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory(SIM_REQUIRE_SYNOTOKEN="1")
    with DsmClient(sim.url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as session:
        with pytest.raises(WebApiError) as exc:
            session.request("SYNO.Core.FileServ.SMB", "set", enable_samba=False)
        assert exc.value.code == 2001
        session.smb_set(enable_samba=False)  # the whole object: accepted
        assert session.smb_get()["enable_samba"] is False


def test_verify_lists_every_difference(sim: Sim) -> None:
    with DsmClient(sim.url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as session:
        apply(session, FULL)
        session.nfs_set(enable_nfs=False, enable_nfs_v4=False)
        session.share_delete("media")
        other_spec = FULL.model_copy(
            update={
                "smb": False,
                "iscsi": FULL.iscsi.model_copy(  # type: ignore[union-attr]
                    update={"lun": FULL.iscsi.lun.model_copy(update={"size_gb": 3})}  # type: ignore[union-attr]
                ),
            }
        )

        with pytest.raises(ServicesMismatch) as exc:
            verify(session, other_spec)

        diffs = exc.value.differences
        assert "nfs enable_nfs is False, spec wants True" in diffs
        assert "nfs enable_nfs_v4 is False, spec wants True" in diffs
        assert "smb enable_samba is True, spec wants False" in diffs
        assert "service nfs-server enabled is False, spec wants True" in diffs
        assert "service pkg-synosamba-smbd enabled is True, spec wants False" in diffs
        assert "share media does not exist" in diffs
        assert any(d.startswith("iscsi lun ci-lun: size 2147483648 bytes") for d in diffs)
        assert len(diffs) == 7
        assert f"{len(diffs)} differences" in str(exc.value)
        assert isinstance(exc.value, WebApiError)

        # apply repairs what comes before the LUN and refuses to resize it (data loss).
        with pytest.raises(ServicesMismatch, match="not changed automatically"):
            apply(session, other_spec)
        assert sim.state()["shares"] == ["ci", "media"]
        report = apply(session, FULL)
        assert report.changes == ["smb: enable_samba false -> true"]
        verify(session, FULL)


def test_apply_replaces_a_target_with_another_iqn(sim: Sim) -> None:
    spec = ServicesSpec.model_validate({"iscsi": {"target": {"name": "t"}}})
    with DsmClient(sim.url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as session:
        apply(session, spec)
        (target,) = session.target_list()
        assert target["iqn"].startswith("iqn.2000-01.com.synology:")
        pinned = ServicesSpec.model_validate(
            {"iscsi": {"target": {"name": "t", "iqn": "iqn.2024-01.test:pinned"}}}
        )
        report = apply(session, pinned)
        assert any("deleted" in c for c in report.changes)
        verify(session, pinned)
        assert [t["iqn"] for t in session.target_list()] == ["iqn.2024-01.test:pinned"]


def test_spec_validation() -> None:
    spec = ServicesSpec.model_validate({"shares": [{"name": "data"}]})
    assert spec.shares[0].path == "/volume1/data"
    assert spec.shares[0].vol_path == "/volume1"
    assert (spec.nfs, spec.smb, spec.nfs_v4, spec.iscsi) == (True, True, False, None)
    for bad in (
        {"nfs": False, "nfs_v4": True},
        {"shares": [{"name": "a", "path": "/volume1/b"}]},
        {"shares": [{"name": "a", "path": "/srv/a"}]},
        {"shares": [{"name": "a"}, {"name": "A"}]},
        {"iscsi": {"target": {"name": "t", "iqn": "not-an-iqn"}}},
        {"iscsi": {"target": {"name": "t"}, "lun": {"name": "l", "size_gb": 0}}},
        {"smb": True, "afp": True},
    ):
        with pytest.raises(ValidationError):
            ServicesSpec.model_validate(bad)


def test_nfs_rules_are_saved_like_the_csi_driver_and_kept_for_other_clients(sim: Sim) -> None:
    # A share is exported over NFS only to the clients of its rules (synology-csi
    # pkg/driver/nodeserver.go setNFSVolumePrivilege saves one before every mount).
    with DsmClient(sim.url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as session:
        report = apply(session, FULL)
        assert "share ci: NFS rules for *" in report.changes
        (rule,) = session.nfs_rules("ci")
        assert rule == {
            "async": True,
            "client": "*",
            "crossmnt": True,
            "insecure": True,
            "privilege": "rw",
            "root_squash": "root",
            "security_flavor": {
                "kerberos": False,
                "kerberos_integrity": False,
                "kerberos_privacy": False,
                "sys": True,
            },
        }
        node = {**rule, "client": "10.0.0.7"}
        session.nfs_rules_save("ci", [{**rule, "privilege": "ro", "insecure": False}, node])

        with pytest.raises(ServicesMismatch) as exc:
            verify(session, FULL)
        assert exc.value.differences == [
            "share ci NFS rule for *: privilege is 'ro', spec wants 'rw'",
            "share ci NFS rule for *: insecure is False, spec wants True",
        ]
        assert apply(session, FULL).changes == ["share ci: NFS rules for *"]
        assert sorted(r["client"] for r in session.nfs_rules("ci")) == ["*", "10.0.0.7"]
        verify(session, FULL)


def test_nfs_rules_are_left_alone_when_nfs_is_off(sim: Sim) -> None:
    spec = FULL.model_copy(update={"nfs": False, "nfs_v4": False})
    with DsmClient(sim.url) as dsm, dsm.login(ADMIN_USER, ADMIN_PASSWORD) as session:
        apply(session, spec)
        assert session.nfs_rules("ci") == []
        verify(session, spec)
