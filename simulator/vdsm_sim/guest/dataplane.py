"""The simulated DSM's data plane: SMB, NFS and iSCSI served for real from ``/volume1``.

The guest kernel's servers do the serving, driven by the same state the Web API changes:

- SMB 2/3: ``ksmbd`` with ``ksmbd.mountd`` (ksmbd-tools); on while ``enable_samba``; every
  share is a section of ``/etc/ksmbd/ksmbd.conf``, writable by the admin (his DSM password is
  his SMB password, in ``/etc/ksmbd/ksmbdpwd.db``).
- NFSv4: ``nfsd`` with ``rpc.mountd`` answering the kernel's export upcalls (NFSv3 off, so no
  portmapper); on while ``enable_nfs`` and ``enable_nfs_v4``; every share is exported
  read-write to every host.
- iSCSI: LIO (``iscsi_target_mod``) configured through configfs, always on like DSM's SAN
  Manager; a LUN is a sparse file ``/volume1/@iSCSI/<uuid>.img`` of its size, a target listens
  on 0.0.0.0:3260 without authentication and serves its mapped LUNs in mapping order.

``/volume1`` is an ext4 file system on the data disk (formatted on first boot). The kernel
servers, mountd daemons and the page cache live in guest RAM and on the data disk, so a QEMU
``savevm``/``loadvm`` carries them, running, with the files written before the snapshot.

:func:`enable` turns the data plane on (only the guest does: ``python3 -m guest --dataplane``);
:func:`changed` is called after every state change and applies it before the change's request
answers, so a share created through the API is served when the API says it exists.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .facts import iscsi

if TYPE_CHECKING:
    from .state import SimState

__all__ = ["DataPlane", "Desired", "changed", "enable"]

log = logging.getLogger(__name__)

VOLUME = Path("/volume1")
LUN_DIR = VOLUME / "@iSCSI"
#: The data disk: the third disk, whose controller is at PCI address 0xc (container/disk.sh):
#: a SCSI disk (``sd*``) behind its own virtio-scsi controller as virtual-dsm 7.41 attaches it
#: (DISK_TYPE=scsi, the default), or a virtio-blk disk (``vd*``, DISK_TYPE=blk).
DATA_DISK_PCI = "0000:00:0c.0"
CONFIGFS = Path("/sys/kernel/config")
LIO = CONFIGFS / "target"
KSMBD_CONF = Path("/etc/ksmbd/ksmbd.conf")
EXPORTS = Path("/etc/exports")
#: DSM gives the first user it creates uid 1026 in group users (100).
ADMIN_UID = 1026
USERS_GID = 100


def _say(message: str) -> None:
    # The console is the container log: the data plane's story belongs there.
    sys.stderr.write(f"sim dataplane: {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class LunFile:
    """A LUN as LIO serves it: a fileio backstore over a sparse file."""

    uuid: str
    name: str
    size: int

    @property
    def path(self) -> Path:
        return LUN_DIR / f"{self.uuid}.img"

    @property
    def backstore(self) -> str:
        # configfs names are short; the uuid's hex digits are unique enough
        return "lun_" + self.uuid.replace("-", "")[:16]


#: DSM's root_squash values as exportfs options. "root" is what synology-csi's node plugin sends
#: (pkg/driver/nodeserver.go) for volumes its pods write as root: read as "no mapping".
_SQUASH = {
    "root": "no_root_squash",
    "no_root_squash": "no_root_squash",
    "root_squash": "root_squash",
    "all": "all_squash",
    "all_squash": "all_squash",
}


def _export_options(rule: dict[str, Any]) -> str:
    """exportfs options for one DSM NFS rule (SYNO.Core.FileServ.NFS.SharePrivilege).

    ``crossmnt`` is kept in the state but not passed on: a simulated share has no filesystem
    mounted inside it, and with it the kernel's export upcalls for the share went unanswered
    (every NFSv4 mount got NFS4ERR_DELAY).
    """
    return ",".join(
        [
            "rw" if rule.get("privilege") == "rw" else "ro",
            "async" if rule.get("async") else "sync",
            "insecure" if rule.get("insecure") else "secure",
            _SQUASH.get(str(rule.get("root_squash")), "root_squash"),
            "no_subtree_check",
        ]
    )


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    _say(f"nothing listens on {port} after {timeout:.0f} s")


def _admin_access(permissions: dict[str, dict[str, dict[str, Any]]], admin: str) -> str:
    """What the wizard's admin may do in a share, from its SYNO.Core.Share.Permission entries.

    As DSM reckons it across the user and the groups he is in (his own entry, the
    ``administrators`` group, ``everyone``): No access wins, then Read/Write, then Read only;
    a share nobody set permissions on is Read/Write for ``administrators``, as DSM gives a
    new shared folder to the administrators group.
    """
    entries = [
        permissions.get("local_user", {}).get(admin),
        permissions.get("local_group", {}).get("administrators", None),
        permissions.get("system", {}).get("everyone"),
    ]
    given = [e for e in entries if e]
    if "administrators" not in permissions.get("local_group", {}):
        given.append({"is_writable": True})
    if any(e.get("is_deny") for e in given):
        return "deny"
    if any(e.get("is_writable") for e in given):
        return "rw"
    if any(e.get("is_readonly") for e in given):
        return "ro"
    return "deny"


@dataclass(frozen=True)
class Desired:
    """What the servers should serve, computed from the state under its lock."""

    smb: bool = False
    nfs: bool = False
    hostname: str = "VirtualDSM"
    workgroup: str = "WORKGROUP"
    smb_signing: bool = False
    admin: tuple[str, str] | None = None
    shares: tuple[str, ...] = ()
    #: (share, "rw" | "ro" | "deny"): what the admin may do over SMB, from the share permissions
    smb_access: tuple[tuple[str, str], ...] = ()
    #: (share, ((client, exportfs options), ...)) for every share with NFS rules
    exports: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    luns: tuple[LunFile, ...] = ()
    targets: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, state: SimState) -> Desired:
        with state.lock:
            return cls(
                smb=bool(state.smb["enable_samba"]),
                # DSM serves NFSv4 only with its v4 switch on (v3 alone otherwise, which the
                # guest does not offer: see the image README)
                nfs=bool(state.nfs["enable_nfs"]) and bool(state.nfs.get("enable_nfs_v4")),
                hostname=state.hostname,
                workgroup=str(state.smb["workgroup"]),
                smb_signing=bool(state.smb.get("enable_server_signing", 0)),
                admin=(state.account.name, state.account.password) if state.account else None,
                shares=tuple(sorted(s.name for s in state.shares.values())),
                smb_access=tuple(
                    sorted(
                        (s.name, _admin_access(s.permissions, state.account.name))
                        for s in state.shares.values()
                    )
                )
                if state.account
                else (),
                exports=tuple(
                    sorted(
                        (s.name, tuple((str(r["client"]), _export_options(r)) for r in s.nfs_rules))
                        for s in state.shares.values()
                        if s.nfs_rules
                    )
                ),
                luns=tuple(
                    sorted(
                        (LunFile(lun.uuid, lun.name, lun.size) for lun in state.luns.values()),
                        key=lambda lun: lun.uuid,
                    )
                ),
                targets=tuple(sorted((t.iqn, tuple(t.mapped)) for t in state.targets.values())),
            )


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        said = (result.stderr or result.stdout).strip()
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {said}")
    return result


@dataclass
class DataPlane:
    """Applies :class:`Desired` to the guest's servers; remembers what it applied."""

    applied: Desired = field(default_factory=Desired)
    volume_ready: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    modules: set[str] = field(default_factory=set)
    smb_users: dict[str, str] = field(default_factory=dict)

    # -- the volume --------------------------------------------------------------------------

    def _data_disk(self) -> str | None:
        blocks = [*Path("/sys/block").glob("sd*"), *Path("/sys/block").glob("vd*")]
        for block in sorted(blocks):
            # /sys/block/sdc -> ../devices/pci0000:00/0000:00:0c.0/virtio2/host2/.../block/sdc
            if f"/{DATA_DISK_PCI}/" in str(block.resolve()):
                return f"/dev/{block.name}"
        return None

    def prepare_volume(self) -> None:
        """Mount the data disk at /volume1, formatting it first if it holds no file system."""
        if self.volume_ready:
            return
        VOLUME.mkdir(exist_ok=True)
        disk = self._data_disk()
        if disk is None:
            _say("no data disk; /volume1 is in guest RAM")
        else:
            if _run("mount", "-t", "ext4", disk, str(VOLUME), check=False).returncode != 0:
                _say(f"formatting {disk} as /volume1 (ext4)")
                _run(
                    "/usr/sbin/mke2fs", "-q", "-F", "-t", "ext4", "-L", "volume1", "-m", "0",
                    "-E", "lazy_itable_init=1,lazy_journal_init=1", disk,
                )  # fmt: skip
                _run("mount", "-t", "ext4", disk, str(VOLUME))
            _say(f"{disk} mounted at /volume1")
        LUN_DIR.mkdir(exist_ok=True)
        self.volume_ready = True

    # -- reconcile ---------------------------------------------------------------------------

    def apply(self, want: Desired) -> None:
        """Make the servers serve ``want``; each service's failure is logged, not raised."""
        with self.lock:
            try:
                self.prepare_volume()
            except (OSError, RuntimeError) as err:
                _say(f"volume: {err}")
                return
            for share in want.shares:
                path = VOLUME / share
                if not path.exists():
                    path.mkdir()
                    # DSM's shares are writable by the admin over every protocol; files
                    # written over SMB (as the admin) are read over NFS (as root).
                    path.chmod(0o777)
            for step in (self._apply_admin, self._apply_smb, self._apply_nfs, self._apply_iscsi):
                try:
                    step(want)
                except (OSError, RuntimeError) as err:
                    _say(f"{step.__name__[7:]}: {err}")
            self.applied = want

    def _modprobe(self, *names: str) -> None:
        for name in names:
            if name not in self.modules:
                _run("modprobe", name)
                self.modules.add(name)

    def _apply_admin(self, want: Desired) -> None:
        if want.admin is None:
            return
        name = want.admin[0]
        passwd = Path("/etc/passwd")
        if f"\n{name}:" not in "\n" + passwd.read_text():
            with passwd.open("a") as f:
                f.write(f"{name}:x:{ADMIN_UID}:{USERS_GID}:{name}:/volume1:/bin/false\n")

    # SMB -----------------------------------------------------------------------------------

    def _smb_conf(self, want: Desired) -> str:
        lines = [
            "[global]",
            f"\tnetbios name = {want.hostname}",
            f"\tworkgroup = {want.workgroup}",
            "\tserver string = Synology NAS (simulated)",
            "\tserver min protocol = SMB2_10",
            "\tmap to guest = never",
            # DSM's "server signing" switch (SYNO.Core.FileServ.SMB enable_server_signing 0)
            f"\tserver signing = {'auto' if want.smb_signing else 'disabled'}",
            "\tguest account = nobody",
        ]
        access = dict(want.smb_access)
        admin = want.admin[0] if want.admin else None
        for share in want.shares:
            lines += [
                f"[{share}]",
                f"\tpath = {VOLUME / share}",
                "\tread only = no",
                "\tbrowseable = yes",
                "\tcreate mask = 0666",
                "\tdirectory mask = 0777",
            ]
            allowed = access.get(share, "rw")
            if admin and allowed == "deny":
                lines.append(f"\tinvalid users = {admin}")
            elif admin and allowed == "ro":
                lines.append(f"\tread list = {admin}")
        return "\n".join(lines) + "\n"

    def _smb_running(self) -> bool:
        return Path("/run/ksmbd.lock").exists() and any(
            (Path("/proc") / pid / "comm").read_text().strip() == "ksmbd.mountd"
            for pid in os.listdir("/proc")
            if pid.isdigit() and (Path("/proc") / pid / "comm").exists()
        )

    def _apply_smb(self, want: Desired) -> None:
        running = self._smb_running()
        if not want.smb:
            if running:
                _run("ksmbd.control", "--shutdown", check=False)
                _say("SMB stopped")
            return
        conf = self._smb_conf(want)
        conf_changed = not KSMBD_CONF.exists() or KSMBD_CONF.read_text() != conf
        if conf_changed:
            KSMBD_CONF.write_text(conf)
        if want.admin and self.smb_users.get(want.admin[0]) != want.admin[1]:
            name, password = want.admin
            _run("ksmbd.adduser", "-C", str(KSMBD_CONF), "-p", password, name)
            self.smb_users[name] = password
            conf_changed = True
        if not running:
            # The ciphers SMB 3 signs and encrypts with, loaded ahead: the kernel's own
            # request for "cmac(aes)" would go to busybox modprobe, which knows no such alias.
            self._modprobe("md4", "cmac", "ccm", "gcm", "nls_utf8", "ksmbd")
            _run("ksmbd.mountd")
            _say(f"SMB on (shares: {', '.join(want.shares) or '-'})")
        elif self._smb_shares_changed(want):
            # ksmbd keeps the settings of a share it served in the kernel: a reload does not
            # reach them, a restart does (clients reconnect)
            _run("ksmbd.control", "--shutdown", check=False)
            for _ in range(50):
                if not self._smb_running():
                    break
                time.sleep(0.1)
            _run("ksmbd.mountd")
            _wait_listening(445)  # the API answers once clients can connect again
            _say(f"SMB restarted (shares: {', '.join(want.shares) or '-'})")
        elif conf_changed:
            _run("ksmbd.control", "--reload")
            _say(f"SMB reloaded (shares: {', '.join(want.shares) or '-'})")

    def _smb_shares_changed(self, want: Desired) -> bool:
        """True when a share served so far is gone or has other permissions now."""
        new = dict(want.smb_access)
        return any(new.get(share) != access for share, access in self.applied.smb_access)

    # NFS -----------------------------------------------------------------------------------

    def _exports(self, want: Desired) -> str:
        # DSM exports a shared folder only to the clients of its NFS rules: none, no export.
        return "".join(
            f"{VOLUME / share} "
            + " ".join(f"{client}({options})" for client, options in rules)
            + "\n"
            for share, rules in want.exports
        )

    def _apply_nfs(self, want: Desired) -> None:
        nfsd_fs = Path("/proc/fs/nfsd")
        running = self.applied.nfs
        if not want.nfs:
            if running:
                _run("rpc.nfsd", "0", check=False)
                _run("exportfs", "-au", check=False)
                _run("killall", "rpc.mountd", check=False)
                _say("NFS stopped")
            return
        exports = self._exports(want)
        if not EXPORTS.exists() or EXPORTS.read_text() != exports or not running:
            EXPORTS.write_text(exports)
            if running:
                _run("exportfs", "-ra")
        if running:
            return
        self._modprobe("nfsd")
        if not (nfsd_fs / "threads").exists():
            _run("mount", "-t", "nfsd", "nfsd", str(nfsd_fs))
        _run("exportfs", "-ra")
        # NFSv4 only: mountd answers the kernel's export upcalls and registers nothing with a
        # portmapper; nfsd on TCP 2049 with the shortest grace period the kernel allows.
        _run("rpc.mountd", "--no-nfs-version", "3", "--no-udp")
        _run(
            "rpc.nfsd",
            "--port",
            "2049",
            "--no-nfs-version",
            "3",
            "--no-udp",
            "--grace-time",
            "10",
            "4",
        )
        # A server that has just started has no clients to wait for: end the grace period
        # now, or a checkpoint taken within it makes every restore refuse opens for a while.
        end_grace = nfsd_fs / "v4_end_grace"
        if end_grace.exists():
            end_grace.write_text("Y")
        _say(f"NFS on (exports: {', '.join(s for s, _ in want.exports) or '-'})")

    # iSCSI ---------------------------------------------------------------------------------

    def _apply_iscsi(self, want: Desired) -> None:
        unchanged = want.luns == self.applied.luns and want.targets == self.applied.targets
        if unchanged and LIO.exists():
            return
        self._modprobe("configfs", "target_core_mod", "target_core_file", "iscsi_target_mod")
        if not LIO.exists():
            _run("mount", "-t", "configfs", "configfs", str(CONFIGFS))
        iscsi = LIO / "iscsi"
        if not iscsi.exists():
            iscsi.mkdir()  # registers the iSCSI fabric
        core = LIO / "core" / "fileio_0"
        core.mkdir(parents=True, exist_ok=True)
        wanted = {lun.uuid: lun for lun in want.luns}
        # Rebuild every target whose mapping changed or whose LUNs go away; then backstores.
        old_targets = dict(self.applied.targets)
        new_targets = dict(want.targets)
        for iqn, mapped in old_targets.items():
            if new_targets.get(iqn) != mapped:
                _remove_target(iscsi / iqn)
        for lun in self.applied.luns:
            if lun.uuid not in wanted:
                _remove_tree(core / lun.backstore)
                lun.path.unlink(missing_ok=True)
        by_uuid = {lun.uuid: lun for lun in want.luns}
        for lun in want.luns:
            store = core / lun.backstore
            if store.exists():
                continue
            if not lun.path.exists():
                with lun.path.open("wb") as f:
                    f.truncate(lun.size)
            store.mkdir()
            (store / "control").write_text(f"fd_dev_name={lun.path},fd_dev_size={lun.size}")
            (store / "wwn" / "vpd_unit_serial").write_text(lun.uuid)
            _identify_as_dsm(store)
            (store / "enable").write_text("1")
        for iqn, mapped in new_targets.items():
            if old_targets.get(iqn) == mapped and (iscsi / iqn).exists():
                continue
            tpg = iscsi / iqn / "tpgt_1"
            tpg.mkdir(parents=True)
            # LUN numbers are DSM's mapping indexes, which start at 1 (state.Target.to_json)
            for index, uuid in enumerate(mapped, start=1):
                mapped_lun = by_uuid.get(uuid)
                if mapped_lun is None:
                    continue
                lun_dir = tpg / "lun" / f"lun_{index}"
                lun_dir.mkdir()
                (lun_dir / mapped_lun.backstore).symlink_to(core / mapped_lun.backstore)
            (tpg / "np" / "0.0.0.0:3260").mkdir()
            for attrib, value in (
                ("authentication", "0"),
                ("generate_node_acls", "1"),
                ("cache_dynamic_acls", "1"),
                ("demo_mode_write_protect", "0"),
            ):
                (tpg / "attrib" / attrib).write_text(value)
            (tpg / "enable").write_text("1")
            _say(f"iSCSI target {iqn} on 3260 with {len(mapped)} LUN(s)")


def _identify_as_dsm(store: Path) -> None:
    """INQUIRY vendor and product as DSM's LUNs answer them (vdsmlib.dsm.iscsi), instead of
    LIO's ``LIO-ORG``/``FILEIO``; written before the backstore is enabled and exported."""
    for name, value in (
        ("vendor_id", iscsi.INQUIRY_VENDOR),
        ("product_id", iscsi.INQUIRY_PRODUCT),
    ):
        attr = store / "wwn" / name
        try:
            attr.write_text(value)
        except OSError as err:
            _say(f"iSCSI {store.name}: cannot set {name} ({err}); LIO's stays")


def _remove_target(target: Path) -> None:
    if not target.exists():
        return
    for tpg in target.glob("tpgt_*"):
        (tpg / "enable").write_text("0")
        for lun_dir in (tpg / "lun").glob("lun_*"):
            for link in lun_dir.iterdir():
                if link.is_symlink():
                    link.unlink()
            lun_dir.rmdir()
        for np in (tpg / "np").iterdir():
            np.rmdir()
        tpg.rmdir()
    target.rmdir()


def _remove_tree(store: Path) -> None:
    if store.exists():
        store.rmdir()


_plane: DataPlane | None = None


def enable(state: SimState) -> DataPlane:
    """Turn the data plane on and apply the state in the background (boot is not delayed)."""
    global _plane
    _plane = DataPlane()
    plane = _plane
    threading.Thread(
        target=lambda: plane.apply(Desired.of(state)), name="dataplane", daemon=True
    ).start()
    return plane


def changed(state: SimState) -> None:
    """Apply the state after a change; nothing unless :func:`enable` ran (not on the host)."""
    if _plane is not None:
        _plane.apply(Desired.of(state))


# LUN data: snapshots and clones carry the bytes, as on DSM ------------------------------------


def _snapshot_path(snapshot_uuid: str) -> Path:
    return LUN_DIR / f"snap-{snapshot_uuid}.img"


def _copy_sparse(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` keeping its holes (a 1 GiB LUN holds a few written blocks)."""
    size = src.stat().st_size
    with src.open("rb") as fin, dst.open("wb") as fout:
        fout.truncate(size)
        fd, offset = fin.fileno(), 0
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after offset
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            fin.seek(start)
            fout.seek(start)
            left = end - start
            while left > 0:
                chunk = fin.read(min(left, 1 << 20))
                if not chunk:
                    break
                fout.write(chunk)
                left -= len(chunk)
            offset = end


def _copy_lun_data(src: Path, dst: Path) -> None:
    if _plane is None or not src.exists():
        return  # no data plane (a host-run guest), or a LUN never served: nothing written
    try:
        _copy_sparse(src, dst)
    except OSError as err:
        _say(f"iSCSI: could not copy {src.name} to {dst.name}: {err}")


def snapshot_lun(lun_uuid: str, snapshot_uuid: str) -> None:
    """Keep the LUN's bytes as they are now, for clones of this snapshot."""
    _copy_lun_data(LunFile(lun_uuid, "", 0).path, _snapshot_path(snapshot_uuid))


def clone_lun(clone_uuid: str, *, lun_uuid: str = "", snapshot_uuid: str = "") -> None:
    """Give a new LUN the bytes of a LUN (now) or of a snapshot, before it is served."""
    src = _snapshot_path(snapshot_uuid) if snapshot_uuid else LunFile(lun_uuid, "", 0).path
    _copy_lun_data(src, LunFile(clone_uuid, "", 0).path)


def forget_snapshot(snapshot_uuid: str) -> None:
    if _plane is not None:
        _snapshot_path(snapshot_uuid).unlink(missing_ok=True)
