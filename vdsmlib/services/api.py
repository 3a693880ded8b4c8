"""DSM file services made to match their desired state (:mod:`.spec`): apply; verify.

:func:`apply` reads the current state through the Web API and changes only what differs, so
running it twice changes nothing the second time; :func:`verify` reads everything back and
raises :class:`ServicesMismatch` listing every difference; :func:`verify_data_plane` checks
that clients can use what the spec turns on (SMB, NFS, iSCSI through the given ports) and raises
:class:`vdsmlib.services.dataplane.DataPlaneError` naming the service and how it failed
(refused, auth, export missing, ...).

Example::

    spec = ServicesSpec(
        nfs=True, smb=True,
        iscsi={"target": {"name": "ci"}, "lun": {"name": "ci-lun", "size_gb": 1}},
        shares=[{"name": "ci"}],
    )
    with DsmClient(url) as dsm, dsm.login(user, password) as session:
        report = apply(session, spec)
        print(report.changes)         # ["nfs: enable_nfs false -> true", ...]
        verify(session, spec)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from vdsmlib.services import dataplane
from vdsmlib.services.spec import (
    SERVICE_ISCSI,
    SERVICE_NFS,
    SERVICE_SMB,
    IscsiLunSpec,
    IscsiSpec,
    IscsiTargetSpec,
    ServicesSpec,
    ShareSpec,
    dsm_iqn,
)
from vdsmlib.webapi.client import DsmSession
from vdsmlib.webapi.errors import WebApiError

__all__ = ["ServicesMismatch", "ServicesReport", "apply", "verify", "verify_data_plane"]

log = logging.getLogger(__name__)


@dataclass
class ServicesReport:
    """What :func:`apply` changed (``changes``) and found already right (``unchanged``)."""

    changes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    lun_uuid: str | None = None
    target_id: int | None = None

    @property
    def changed(self) -> bool:
        """True if anything was changed."""
        return bool(self.changes)


class ServicesMismatch(WebApiError):
    """DSM's services differ from the spec; ``differences`` lists each one."""

    def __init__(self, base_url: str, differences: list[str]) -> None:
        lines = "; ".join(differences)
        super().__init__(
            f"DSM at {base_url} does not match the services spec ({len(differences)} "
            f"differences): {lines}. Run apply() (the services stage) again, or look at "
            "DSM's Control Panel to see why a setting did not stick."
        )
        self.differences = differences


def _onoff(value: Any) -> str:
    return "true" if value else "false"


@dataclass
class _Iscsi:
    target: dict[str, Any] | None = None
    lun: dict[str, Any] | None = None


def _wanted_iqn(session: DsmSession, spec: IscsiTargetSpec) -> str:
    if spec.iqn:
        return spec.iqn
    hostname = str(session.system_info("network").get("hostname") or "")
    if not hostname:
        raise WebApiError(
            "SYNO.Core.System info (type network) reports no hostname, needed for the iSCSI "
            f"target's IQN: set services.iscsi.target.iqn for {spec.name!r} in params",
            api="SYNO.Core.System",
            method="info",
        )
    return dsm_iqn(hostname, spec.name)


def _find_iscsi(session: DsmSession, spec: IscsiSpec) -> _Iscsi:
    found = _Iscsi()
    found.target = next(
        (t for t in session.target_list() if t.get("name") == spec.target.name), None
    )
    if spec.lun is not None:
        found.lun = next(
            (lun for lun in session.lun_list() if lun.get("name") == spec.lun.name), None
        )
    return found


def _mapped_uuids(target: dict[str, Any]) -> set[str]:
    return {
        str(m.get("lun_uuid")) for m in target.get("mapped_luns", []) or [] if isinstance(m, dict)
    }


def _shares_by_name(session: DsmSession) -> dict[str, dict[str, Any]]:
    return {str(s.get("name", "")).lower(): s for s in session.share_list()}


def apply(session: DsmSession, spec: ServicesSpec) -> ServicesReport:
    """Bring DSM's services to ``spec``, changing only what differs; return what changed.

    Needs an administrator session; on DSM 7.3 log in with a SynoToken (the default of
    :meth:`DsmClient.login`). Existing LUNs of another size are not resized (that would lose
    data): that raises :class:`ServicesMismatch`.
    """
    report = ServicesReport()

    nfs = session.nfs_get()
    nfs_changes: dict[str, Any] = {}
    if bool(nfs.get("enable_nfs")) != spec.nfs:
        nfs_changes["enable_nfs"] = spec.nfs
    if bool(nfs.get("enable_nfs_v4")) != spec.nfs_v4:
        nfs_changes["enable_nfs_v4"] = spec.nfs_v4
    if nfs_changes:
        session.nfs_set(**nfs_changes)
        report.changes += [
            f"nfs: {k} {_onoff(nfs.get(k))} -> {_onoff(v)}" for k, v in nfs_changes.items()
        ]
    else:
        report.unchanged.append(f"nfs: enable_nfs {_onoff(spec.nfs)}, v4 {_onoff(spec.nfs_v4)}")

    smb = session.smb_get()
    if bool(smb.get("enable_samba")) != spec.smb:
        session.smb_set(enable_samba=spec.smb)
        report.changes.append(
            f"smb: enable_samba {_onoff(smb.get('enable_samba'))} -> {_onoff(spec.smb)}"
        )
    else:
        report.unchanged.append(f"smb: enable_samba {_onoff(spec.smb)}")

    if spec.shares:
        shares = _shares_by_name(session)
        for share in spec.shares:
            have = shares.get(share.name.lower())
            if have is None:
                session.share_create(share.name, share.vol_path)
                report.changes.append(f"share {share.name}: created on {share.vol_path}")
            elif have.get("vol_path") != share.vol_path:
                raise ServicesMismatch(
                    session.client.base_url,
                    [
                        f"share {share.name} is on {have.get('vol_path')}, spec wants "
                        f"{share.vol_path} (moving a share is not done automatically)"
                    ],
                )
            else:
                report.unchanged.append(f"share {share.name} on {share.vol_path}")
            if spec.nfs:
                _apply_nfs_rules(session, share, report)

    if spec.iscsi is not None:
        _apply_iscsi(session, spec.iscsi, report)

    log.info(
        "services applied to %s: %s",
        session.client.base_url,
        "; ".join(report.changes) or "nothing to change",
    )
    return report


def _rule_problems(share: ShareSpec, rules: list[dict[str, Any]]) -> list[str]:
    """How the NFS rules DSM has for ``share`` fall short of the spec's (empty: they match)."""
    by_client = {str(r.get("client")): r for r in rules}
    problems: list[str] = []
    for rule in share.nfs_rules:
        have = by_client.get(rule.client)
        if have is None:
            problems.append(f"share {share.name} has no NFS rule for {rule.client}")
        else:
            problems += [
                f"share {share.name} NFS rule for {rule.client}: {d}"
                for d in rule.differences(have)
            ]
    return problems


def _apply_nfs_rules(session: DsmSession, share: ShareSpec, report: ServicesReport) -> None:
    rules = session.nfs_rules(share.name)
    if not _rule_problems(share, rules):
        report.unchanged.append(f"share {share.name}: NFS rules")
        return
    wanted = {rule.client for rule in share.nfs_rules}
    kept = [r for r in rules if str(r.get("client")) not in wanted]
    session.nfs_rules_save(share.name, kept + [rule.as_dsm() for rule in share.nfs_rules])
    report.changes.append(
        f"share {share.name}: NFS rules for {', '.join(r.client for r in share.nfs_rules)}"
    )


def _apply_iscsi(session: DsmSession, spec: IscsiSpec, report: ServicesReport) -> None:
    found = _find_iscsi(session, spec)
    target = found.target
    iqn = _wanted_iqn(session, spec.target)
    if target is not None and target.get("iqn") != iqn:
        # A target holds no data: replacing it is the only way to change its IQN.
        session.target_delete(int(target["target_id"]))
        report.changes.append(
            f"iscsi target {spec.target.name}: deleted (iqn {target.get('iqn')} is not {iqn})"
        )
        target = None
    if target is None:
        target_id = session.target_create(spec.target.name, iqn)
        report.changes.append(f"iscsi target {spec.target.name}: created (id {target_id})")
        mapped: set[str] = set()
    else:
        target_id = int(target["target_id"])
        mapped = _mapped_uuids(target)
        report.unchanged.append(f"iscsi target {spec.target.name} (id {target_id})")
    report.target_id = target_id

    if spec.lun is None:
        return
    lun = found.lun
    if lun is None:
        uuid = session.lun_create(spec.lun.name, spec.lun.size_bytes, location=spec.lun.location)
        report.changes.append(
            f"iscsi lun {spec.lun.name}: created ({spec.lun.size_gb} GiB on {spec.lun.location})"
        )
    else:
        problems = _lun_differences(lun, spec.lun)
        if problems:
            raise ServicesMismatch(
                session.client.base_url,
                [
                    p + " (an existing LUN is not changed automatically: delete it)"
                    for p in problems
                ],
            )
        uuid = str(lun["uuid"])
        report.unchanged.append(f"iscsi lun {spec.lun.name}")
    report.lun_uuid = uuid
    if uuid not in mapped:
        session.map_target(uuid, [target_id])
        report.changes.append(f"iscsi lun {spec.lun.name}: mapped to {spec.target.name}")
    else:
        report.unchanged.append(f"iscsi lun {spec.lun.name} mapped to {spec.target.name}")


def _lun_differences(lun: dict[str, Any], spec: IscsiLunSpec) -> list[str]:
    problems = []
    try:
        size = int(lun.get("size", -1))
    except (TypeError, ValueError):
        size = -1
    if size != spec.size_bytes:
        problems.append(f"iscsi lun {spec.name}: size {size} bytes, spec {spec.size_bytes}")
    if lun.get("location") != spec.location:
        problems.append(
            f"iscsi lun {spec.name}: location {lun.get('location')}, spec {spec.location}"
        )
    return problems


def verify(session: DsmSession, spec: ServicesSpec) -> list[str]:
    """Read DSM's services back and compare with ``spec``.

    Returns the checks that passed (evidence for logs and notebooks); raises
    :class:`ServicesMismatch` listing every difference.
    """
    differences: list[str] = []
    passed: list[str] = []

    def expect(what: str, actual: Any, wanted: Any) -> None:
        if actual == wanted:
            passed.append(f"{what} = {wanted}")
        else:
            differences.append(f"{what} is {actual!r}, spec wants {wanted!r}")

    nfs = session.nfs_get()
    expect("nfs enable_nfs", bool(nfs.get("enable_nfs")), spec.nfs)
    expect("nfs enable_nfs_v4", bool(nfs.get("enable_nfs_v4")), spec.nfs_v4)
    smb = session.smb_get()
    expect("smb enable_samba", bool(smb.get("enable_samba")), spec.smb)

    wanted_services = {SERVICE_NFS: spec.nfs, SERVICE_SMB: spec.smb}
    if spec.iscsi is not None:
        wanted_services[SERVICE_ISCSI] = True
    services = session.services(wanted_services)
    for service_id, on in wanted_services.items():
        row = services.get(service_id)
        if row is None:
            if on:
                differences.append(f"service {service_id} is not listed by SYNO.Core.Service")
            continue
        # "static" services are always on; only enabled/disabled reflect the switch.
        status = row.get("enable_status")
        expect(
            f"service {service_id} enabled",
            status in ("enabled", "static"),
            on,
        )

    if spec.shares:
        shares = _shares_by_name(session)
        for share in spec.shares:
            have = shares.get(share.name.lower())
            if have is None:
                differences.append(f"share {share.name} does not exist")
            else:
                expect(f"share {share.name} vol_path", have.get("vol_path"), share.vol_path)
                if spec.nfs:
                    problems = _rule_problems(share, session.nfs_rules(share.name))
                    differences += problems
                    if not problems:
                        passed.append(f"share {share.name} NFS rules")

    if spec.iscsi is not None:
        iscsi = spec.iscsi
        found = _find_iscsi(session, iscsi)
        if found.target is None:
            differences.append(f"iscsi target {iscsi.target.name} does not exist")
        else:
            expect(
                f"iscsi target {iscsi.target.name} iqn",
                found.target.get("iqn"),
                _wanted_iqn(session, iscsi.target),
            )
        if iscsi.lun is not None:
            if found.lun is None:
                differences.append(f"iscsi lun {iscsi.lun.name} does not exist")
            else:
                problems = _lun_differences(found.lun, iscsi.lun)
                differences += problems
                if not problems:
                    passed.append(f"iscsi lun {iscsi.lun.name} ({iscsi.lun.size_gb} GiB)")
                if found.target is not None:
                    mapped = str(found.lun.get("uuid")) in _mapped_uuids(found.target)
                    expect(
                        f"iscsi lun {iscsi.lun.name} mapped to {iscsi.target.name}", mapped, True
                    )

    if differences:
        raise ServicesMismatch(session.client.base_url, differences)
    log.info("services at %s match the spec (%d checks)", session.client.base_url, len(passed))
    return passed


def verify_data_plane(
    ports: Any,
    spec: ServicesSpec,
    *,
    user: str,
    password: str,
    server_name: str,
    build_file: bool = False,
) -> list[str]:
    """Use every service ``spec`` turns on as a client would; return what was done.

    ``ports`` is a :class:`vdsmlib.services.dataplane.Endpoints` (where each service answers).
    The Web API saying "on" is not enough: this copies a file in over SMB and reads it over NFS,
    logs in to the iSCSI target and writes a block of the LUN (see
    :func:`vdsmlib.services.dataplane.check`).
    ``build_file``: also read back the file the build's services stage wrote before the final
    checkpoint (:data:`vdsmlib.services.dataplane.BUILD_FILE`).
    """
    report = dataplane.check(
        ports,
        spec,
        user=user,
        password=password,
        server_name=server_name,
        build_file=build_file,
    )
    return report.lines
