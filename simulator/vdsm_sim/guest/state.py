"""Everything the simulated DSM remembers, in process memory only.

Nothing is written to disk on purpose: the simulator relies on QEMU savevm/loadvm to carry this
state, exactly like a real VM carries DSM's.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import crypto
from .scenario import Scenario

__all__ = [
    "Account",
    "Lun",
    "LunSnapshot",
    "Session",
    "Share",
    "ShareSnapshot",
    "SimState",
    "Target",
]

#: The Btrfs volume Virtual DSM creates by itself.
VOLUME_PATH = "/volume1"
VOLUME_TOTAL_BYTES = 14_713_184_256
VOLUME_SYSTEM_USED_BYTES = 312_475_648
MAX_SHARES = 256
MAX_LUNS = 128
MAX_TARGETS = 128


def _uuid() -> str:
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _die_with_parent() -> None:
    """In a child: end with SIGTERM when the guest process ends (Linux prctl), so a key
    generation never outlives the server that asked for it."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (ImportError, OSError, AttributeError):
        pass


@dataclass
class Account:
    """The administrator created by the wizard."""

    name: str
    password: str


@dataclass
class Session:
    """A login session; its id is the ``id`` cookie / ``_sid``."""

    sid: str
    user: str
    synotoken: str
    created: float = field(default_factory=time.time)


@dataclass
class Share:
    """A shared folder."""

    name: str
    vol_path: str
    desc: str = ""
    uuid: str = field(default_factory=_uuid)
    enable_recycle_bin: bool = False
    recycle_bin_admin_only: bool = False
    enable_share_cow: bool = True
    encryption: int = 0
    quota_value: int = 0
    #: NFS rules (SYNO.Core.FileServ.NFS.SharePrivilege), as the client saved them.
    nfs_rules: list[dict[str, Any]] = field(default_factory=list)
    #: user_group_type -> {name: permission}, SYNO.Core.Share.Permission.
    permissions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Btrfs snapshots, oldest first.
    snapshots: list[ShareSnapshot] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vol_path": self.vol_path,
            "desc": self.desc,
            "uuid": self.uuid,
            "enable_recycle_bin": self.enable_recycle_bin,
            "recycle_bin_admin_only": self.recycle_bin_admin_only,
            "enable_share_cow": self.enable_share_cow,
            "encryption": self.encryption,
            "quota_value": self.quota_value,
            "support_snapshot": True,
            "is_aclmode": True,
            "hidden": False,
            # the rest of what DSM answers to a share list with ``additional`` (the recorded
            # answer in vdsmlib.dsm.recorded)
            "enable_share_compress": False,
            "enc_auto_mount": False,
            "force_readonly_reason": "",
            "is_block_snap_action": False,
            "is_cluster_share": False,
            "is_cold_storage_share": False,
            "is_exfat_share": False,
            "is_force_readonly": False,
            "is_share_moving": False,
            "is_support_acl": True,
            "is_sync_share": False,
            "is_usb_share": False,
            "share_quota_used": 0,
            "support_action": 511,
            "task_id": "",
            "unite_permission": False,
        }


@dataclass
class ShareSnapshot:
    """A snapshot of a shared folder; DSM names it by its time, ``GMT+00-2026.11.30-04.40.00``."""

    time: str
    desc: str
    lock: bool
    ruuid: str = field(default_factory=_uuid)

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "desc": self.desc,
            "lock": self.lock,
            "schedule_snapshot": False,
            "ruuid": self.ruuid,
            "snap_size": "0",
        }


#: DSM's numeric LUN types. FILE 3, ADV 15, BLUN_THICK 259 and BLUN 263 are the ones the
#: Synology CSI driver names (synology-csi synocli/cmd/lun.go lunTypeToString, pkg/models/dsm.go);
#: the others are the simulator's choice.
LUN_TYPE_NUMBERS = {
    "BLOCK": 1,
    "FILE": 3,
    "THIN": 9,
    "ADV": 15,
    "BLUN": 263,
    "BLUN_THICK": 259,
    "BLUN_SINK": 271,
    "BLUN_THICK_SINK": 267,
}


@dataclass
class LunSnapshot:
    """A snapshot of a LUN."""

    name: str
    parent_uuid: str
    total_size: int
    root_path: str
    description: str = ""
    taken_by: str = ""
    is_locked: bool = False
    uuid: str = field(default_factory=_uuid)
    create_time: int = field(default_factory=lambda: int(time.time()))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uuid": self.uuid,
            "parent_uuid": self.parent_uuid,
            "status": "Healthy",
            "total_size": self.total_size,
            "create_time": self.create_time,
            "root_path": self.root_path,
            "description": self.description,
            "taken_by": self.taken_by,
            "is_locked": self.is_locked,
        }


@dataclass
class Lun:
    """An iSCSI LUN."""

    name: str
    size: int
    lun_type: str
    location: str
    uuid: str = field(default_factory=_uuid)
    lun_id: int = 0
    description: str = ""
    dev_attribs: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[LunSnapshot] = field(default_factory=list)

    @property
    def thick(self) -> bool:
        return self.lun_type in ("FILE", "BLUN_THICK", "BLOCK", "BLUN_THICK_SINK")

    def to_json(self) -> dict[str, Any]:
        return {
            "lun_id": self.lun_id,
            "name": self.name,
            "uuid": self.uuid,
            "type": LUN_TYPE_NUMBERS[self.lun_type],
            "type_str": self.lun_type,
            "location": self.location,
            "size": self.size,
            "allocated_size": self.size if self.thick else 0,
            "status": "normal",
            "flashcache_status": "no_cache",
            "is_action_locked": False,
            "direct_io_pattern": 0,
            "description": self.description,
            "dev_attribs": list(self.dev_attribs),
        }


@dataclass
class Target:
    """An iSCSI target; ``mapped`` holds LUN uuids in mapping order."""

    target_id: int
    name: str
    iqn: str
    max_sessions: int = 1
    auth_type: int = 0
    mapped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "target_id": self.target_id,
            "name": self.name,
            "iqn": self.iqn,
            "status": "online" if self.mapped else "offline",
            "max_sessions": self.max_sessions,
            "auth_type": self.auth_type,
            # DSM numbers a target's LUNs from 1: the CSI driver logs in to
            # ".../by-path/ip-<portal>-iscsi-<iqn>-lun-<mapping_index>" and users report "-lun-1"
            # for the first (SynologyOpenSource/synology-csi pkg/driver/nodeserver.go loginTarget,
            # issue #67).
            "mapped_luns": [
                {"lun_uuid": u, "mapping_index": i} for i, u in enumerate(self.mapped, start=1)
            ],
            "connected_sessions": [],
            "network_portals": [{"controller_id": 0, "interface_name": "all"}],
        }


class SimState:
    """The whole memory of the simulated DSM; every access holds :attr:`lock`."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.lock = threading.RLock()
        self.started = time.monotonic()
        self.hostname = scenario.hostname
        self.account: Account | None = None
        self.screens_done: list[str] = []
        self.screen_actions: dict[str, str] = {}
        self.update_option = "important"
        self.sessions: dict[str, Session] = {}
        self.nfs: dict[str, Any] = {
            "enable_nfs": False,
            "enable_nfs_v4": False,
            "enabled_minor_ver": 0,
            "nfs_v4_domain": "",
            "read_size": 8192,
            "write_size": 8192,
            "support_encrypt_share": 1,
            "support_major_ver": 4,
            "support_minor_ver": 1,
            "unix_pri_enable": True,
        }
        self.smb: dict[str, Any] = {
            "enable_samba": True,
            "workgroup": "WORKGROUP",
            "disable_shadow_copy": False,
            "enable_local_master_browser": False,
            "smb_min_protocol": 1,
            "smb_max_protocol": 3,
            "enable_server_signing": 0,
            "enable_op_lock": True,
            "enable_smb2_leases": True,
            "enable_durable_handles": False,
            "offline_files_support": False,
            "enable_msdfs": False,
            "wstransfer": True,
        }
        self.shares: dict[str, Share] = {}
        self.luns: dict[str, Lun] = {}
        self.targets: dict[int, Target] = {}
        self.next_target_id = 1
        self.next_lun_id = 1
        self._rsa_key: crypto.RsaKey | None = None
        self._rsa_ready = threading.Event()
        self._keygen_started = False
        #: The login page's static X25519 key (DSM 7's ``_SSID`` cookie).
        self.ssid_private, self.ssid_public = crypto.x25519_keypair()

    # -- login encryption --------------------------------------------------------------------

    def load_rsa_key(self, path: str) -> None:
        """Use the login RSA key in ``path`` (JSON of :class:`crypto.RsaKey`): the simulator
        image makes one per image build, so a guest never spends its CPU on key generation."""
        with open(path, encoding="ascii") as file:
            key = crypto.RsaKey(**json.load(file))
        with self.lock:
            self._keygen_started = True
            self._rsa_key = key
        self._rsa_ready.set()

    def start_key_generation(self) -> None:
        """Generate the login RSA key in a child process at the lowest priority (seconds on a
        host, minutes under TCG), so the web server keeps answering meanwhile; the key lives in
        this process's memory, so a restored snapshot has it already. Idempotent. Started by
        the first client that needs the key (when no key file was given); the child ends with
        this process."""
        with self.lock:
            if self._keygen_started:
                return
            self._keygen_started = True

        def run() -> None:
            started = time.monotonic()
            child = subprocess.run(
                [sys.executable, "-m", f"{__package__}.crypto"],
                capture_output=True,
                text=True,
                check=False,
                preexec_fn=_die_with_parent,
            )
            if child.returncode == 0:
                self._rsa_key = crypto.RsaKey(**json.loads(child.stdout))
            else:  # no child process possible: generate here
                sys.stderr.write(f"sim guest: key child failed: {child.stderr.strip()}\n")
                self._rsa_key = crypto.generate_rsa_key()
            self._rsa_ready.set()
            sys.stderr.write(
                f"sim guest: RSA-{crypto.RSA_BITS} login key ready after "
                f"{time.monotonic() - started:.1f}s\n"
            )
            sys.stderr.flush()

        threading.Thread(target=run, name="rsa-keygen", daemon=True).start()

    def rsa_key(self) -> crypto.RsaKey:
        """The login RSA key, waiting for its generation if needed."""
        self.start_key_generation()
        self._rsa_ready.wait()
        assert self._rsa_key is not None
        return self._rsa_key

    # -- network -----------------------------------------------------------------------------

    @staticmethod
    def guest_ip() -> str:
        """The guest's own IPv4 address (the one its default route leaves from)."""
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect(("192.0.2.1", 9))
                return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"

    @staticmethod
    def mac_address() -> str:
        """The guest's network card's MAC address (eth0), else one in Synology's OUI."""
        try:
            with open("/sys/class/net/eth0/address", encoding="ascii") as f:
                return f.read().strip()
        except OSError:
            return "00:11:32:00:00:01"

    def gateway_ip(self) -> str:
        """The default gateway: the first address of the guest's /24."""
        return ".".join([*self.guest_ip().split(".")[:3], "1"])

    # -- wizard ------------------------------------------------------------------------------

    def install_ready(self) -> bool:
        """True once the install delay has passed (the welcome button may show)."""
        return time.monotonic() - self.started >= self.scenario.install_delay

    def pending_screens(self) -> list[str]:
        with self.lock:
            return [s for s in self.scenario.screens if s not in self.screens_done]

    def current_screen(self) -> str | None:
        pending = self.pending_screens()
        return pending[0] if pending else None

    # -- sessions ----------------------------------------------------------------------------

    def new_session(self, user: str) -> Session:
        with self.lock:
            session = Session(
                sid=secrets.token_urlsafe(30), user=user, synotoken=secrets.token_urlsafe(9)
            )
            self.sessions[session.sid] = session
            return session

    def session(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self.lock:
            return self.sessions.get(sid)

    def end_session(self, sid: str | None) -> None:
        with self.lock:
            if sid:
                self.sessions.pop(sid, None)

    def is_admin(self, session: Session | None) -> bool:
        with self.lock:
            return (
                session is not None
                and self.account is not None
                and session.user == self.account.name
            )

    # -- storage -----------------------------------------------------------------------------

    def volume_free_bytes(self) -> int:
        with self.lock:
            used = sum(lun.size for lun in self.luns.values() if lun.thick)
            return VOLUME_TOTAL_BYTES - VOLUME_SYSTEM_USED_BYTES - used

    def public_state(self) -> dict[str, Any]:
        """A JSON summary for ``GET /sim/state`` (no secrets)."""
        with self.lock:
            return {
                "install_ready": self.install_ready(),
                "configured": self.account is not None,
                "hostname": self.hostname,
                "admin_user": self.account.name if self.account else None,
                "dsm_version": self.scenario.dsm_version,
                "screens": list(self.scenario.screens),
                "screens_done": list(self.screens_done),
                "screens_pending": self.pending_screens(),
                "screen_actions": dict(self.screen_actions),
                "update_option": self.update_option,
                "enable_nfs": self.nfs["enable_nfs"],
                "enable_samba": self.smb["enable_samba"],
                "shares": sorted(self.shares),
                "luns": sorted(lun.name for lun in self.luns.values()),
                "targets": sorted(t.name for t in self.targets.values()),
                "sessions": len(self.sessions),
                "require_synotoken": self.scenario.require_synotoken,
            }
