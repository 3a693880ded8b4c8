"""Data-plane checks: SMB, NFS and iSCSI used the way a client uses them, from userland.

Nothing here needs a kernel module on the machine that runs it: SMB goes through Debian's
``smbclient``, NFSv4 through ``nfs-ls``/``nfs-cp`` (``libnfs-utils``), iSCSI through a small
iSCSI initiator over a TCP socket (login, REPORT LUNS, READ CAPACITY(16), WRITE(10), READ(10)).
The checks talk to whatever answers on the given ports and do not know whether it is DSM or the
simulator.

Example::

    ports = Endpoints(host="127.0.0.1", smb=49153, nfs=49154, iscsi=49155)
    report = check(ports, spec, user="vdsm", password="...")
    print(report.lines)   # ["smb: wrote /ci/...", "nfs: read ...", "iscsi: ..."]

Each failure raises :class:`DataPlaneError` naming the service and how it failed
(``refused``, ``auth``, ``export missing``, ``share missing``, ``target missing``,
``lun missing``, ``mismatch``, ``client missing``, ``error``).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from vdsmlib.errors import VdsmError
from vdsmlib.readiness import ReadinessTimeout, wait_for, wait_for_sync
from vdsmlib.services.spec import ServicesSpec, dsm_iqn

__all__ = [
    "BUILD_FILE",
    "BUILD_FILE_DATA",
    "DataPlaneError",
    "DataPlaneReport",
    "Endpoints",
    "IscsiSession",
    "check",
    "check_build_file",
    "check_iscsi",
    "check_nfs",
    "check_smb",
    "probe_port",
    "read_smb",
    "write_build_file",
    "write_nfs",
]

log = logging.getLogger(__name__)

#: Container ports a client needs per service (NFSv4 only: no portmapper, no mountd).
SERVICE_PORTS = {"smb": 445, "nfs": 2049, "iscsi": 3260}
#: The file the services stage writes into the first share before the final checkpoint: every
#: restore of the final image serves it over SMB and NFS (the smoke stage reads it back).
BUILD_FILE = "vdsm-ci-build.txt"
BUILD_FILE_DATA = b"written by the vdsm-ci services stage before the final checkpoint\n"
CLIENT_PACKAGES = {"smbclient": "smbclient", "nfs-ls": "libnfs-utils", "nfs-cp": "libnfs-utils"}


class DataPlaneError(VdsmError):
    """A data-plane check failed; ``service`` (smb, nfs, iscsi) and ``how`` say which and how."""

    def __init__(self, service: str, how: str, detail: str) -> None:
        super().__init__(f"{service} data plane: {how}: {detail}")
        self.service = service
        self.how = how


@dataclass(frozen=True)
class Endpoints:
    """Where each service answers: a host and the (published) port of each service."""

    host: str
    smb: int = 445
    nfs: int = 2049
    iscsi: int = 3260


@dataclass
class DataPlaneReport:
    """What the checks did, one line per step."""

    lines: list[str] = field(default_factory=list)
    lun_bytes: int | None = None


# -- ports ------------------------------------------------------------------------------------


def probe_port(service: str, host: str, port: int, *, timeout: float = 5.0) -> None:
    """Raise ``refused`` unless a server holds a connection on ``host:port`` open.

    SMB, NFS and iSCSI servers wait for the client to speak first. A port that nobody serves
    behind Docker's proxy or a NAT accepts and then closes at once, so a connection that stays
    open for a moment, silent, is the server.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(1.0)
            try:
                data = sock.recv(1)
            except TimeoutError:
                return
            except OSError as err:
                raise DataPlaneError(
                    service, "refused", f"{host}:{port} reset the connection ({err})"
                ) from err
            if not data:
                raise DataPlaneError(
                    service, "refused", f"{host}:{port} closed the connection at once"
                )
    except DataPlaneError:
        raise
    except OSError as err:
        raise DataPlaneError(service, "refused", f"cannot connect to {host}:{port}: {err}") from err


def _tool(service: str, name: str) -> str:
    path = shutil.which(name)
    if path is None:
        package = CLIENT_PACKAGES.get(name, name)
        raise DataPlaneError(
            service, "client missing", f"{name} not found: apt-get install {package}"
        )
    return path


def _run(service: str, argv: list[str], *, env: dict[str, str] | None = None) -> str:
    log.debug("%s: %s", service, " ".join(argv))
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise DataPlaneError(service, "error", f"{argv[0]} took over 60 s") from err
    said = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise DataPlaneError(service, _classify(service, said), f"{Path(argv[0]).name}: {said}")
    return said


def _classify(service: str, said: str) -> str:
    text = said.upper()
    if any(
        s in text
        for s in ("CONNECTION_REFUSED", "CONNECTION_RESET", "CONNECTION_DISCONNECTED", "REFUSED")
    ):
        return "refused"
    if "LOGON_FAILURE" in text or "ACCESS_DENIED" in text or "NFS4ERR_ACCESS" in text:
        return "auth"
    if "BAD_NETWORK_NAME" in text:
        return "share missing"
    if service == "nfs" and ("NOENT" in text or "MOUNT" in text or "LOOKUP" in text):
        return "export missing"
    return "error"


# -- SMB ----------------------------------------------------------------------------------------


def check_smb(
    ports: Endpoints, share: str, user: str, password: str, name: str, data: bytes
) -> list[str]:
    """Copy ``data`` into ``share`` as ``name`` over SMB 3 and read it back; list the share."""
    probe_port("smb", ports.host, ports.smb)
    smbclient = _tool("smb", "smbclient")
    with tempfile.TemporaryDirectory(prefix="vdsm-smb-") as tmp:
        local = Path(tmp) / "out"
        back = Path(tmp) / "back"
        local.write_bytes(data)
        listing = _run(
            "smb",
            [
                smbclient,
                f"//{ports.host}/{share}",
                "-p",
                str(ports.smb),
                "-U",
                user,
                "-m",
                "SMB3",
                "-c",
                f'put "{local}" "{name}"; get "{name}" "{back}"; ls',
            ],
            env={"PASSWD": password},  # not on the command line, where ps shows it
        )
        if "NT_STATUS_" in listing:
            # smbclient goes on after a failed command and exits 0: its status says why
            status = next(w for w in listing.split() if w.startswith("NT_STATUS_"))
            raise DataPlaneError(
                "smb", _classify("smb", status), f"copying {name} into {share}: {status}"
            )
        if not back.exists() or back.read_bytes() != data:
            raise DataPlaneError("smb", "mismatch", f"{name} read back differs from what was put")
    if name not in listing:
        raise DataPlaneError("smb", "mismatch", f"{name} missing from the listing: {listing}")
    return [f"smb: put and got back {share}/{name} ({len(data)} bytes) as {user}"]


def read_smb(
    ports: Endpoints, share: str, user: str, password: str, name: str, data: bytes
) -> list[str]:
    """Read ``share/name`` over SMB 3 as ``user`` and compare it with ``data``."""
    probe_port("smb", ports.host, ports.smb)
    smbclient = _tool("smb", "smbclient")
    with tempfile.TemporaryDirectory(prefix="vdsm-smb-") as tmp:
        back = Path(tmp) / "back"
        _run(
            "smb",
            [smbclient, f"//{ports.host}/{share}", "-p", str(ports.smb), "-U", user,
             "-m", "SMB3", "-c", f'get "{name}" "{back}"'],
            env={"PASSWD": password},
        )  # fmt: skip
        if not back.exists() or back.read_bytes() != data:
            raise DataPlaneError("smb", "mismatch", f"{share}/{name} differs over SMB")
    return [f"smb: read {share}/{name} back ({len(data)} bytes), same bytes"]


# -- NFS ----------------------------------------------------------------------------------------


class _NfsGrace(Exception):
    """The server asks to retry later: its grace period (NFS4ERR_GRACE), or it is busy, e.g.
    waiting on its export table (NFS4ERR_DELAY), which NFS clients retry (RFC 7530, 13.1)."""


#: Longest NFSv4 grace period to wait out (Linux and DSM: 90 s after the server starts).
NFS_GRACE_SECONDS = 100.0


def _nfs_run(argv: list[str]) -> str:
    """Run an NFS client command; wait out the server's grace period as NFS clients do."""

    async def attempt(_budget: float) -> str:
        try:
            return _run("nfs", argv)
        except DataPlaneError as err:
            if "NFS4ERR_GRACE" in str(err) or "NFS4ERR_DELAY" in str(err):
                raise _NfsGrace(str(err)) from err
            raise

    try:
        return wait_for_sync(
            lambda: wait_for(
                attempt,
                what="the NFS server's grace period to end",
                timeout=NFS_GRACE_SECONDS,
                interval=1.0,
                retryable=(_NfsGrace,),
            ),
            "NFS grace period",
        )
    except ReadinessTimeout as err:
        raise DataPlaneError("nfs", "error", f"still in its grace period: {err}") from err


def _nfs_url(ports: Endpoints, path: str) -> str:
    return f"nfs://{ports.host}{path}?version=4&nfsport={ports.nfs}&uid=0&gid=0"


def check_nfs(ports: Endpoints, export: str, name: str, data: bytes | None) -> list[str]:
    """List ``export`` over NFSv4; with ``data``, read ``name`` and compare."""
    probe_port("nfs", ports.host, ports.nfs)
    nfs_ls = _tool("nfs", "nfs-ls")
    listing = _nfs_run([nfs_ls, _nfs_url(ports, export)])
    if name not in listing.split() and not any(
        line.rstrip().endswith(f" {name}") for line in listing.splitlines()
    ):
        raise DataPlaneError("nfs", "mismatch", f"{name} not listed in {export}: {listing}")
    lines = [f"nfs: {export} lists {name}"]
    if data is not None:
        nfs_cp = _tool("nfs", "nfs-cp")
        with tempfile.TemporaryDirectory(prefix="vdsm-nfs-") as tmp:
            local = Path(tmp) / "back"
            _nfs_run([nfs_cp, _nfs_url(ports, f"{export}/{name}"), str(local)])
            if local.read_bytes() != data:
                raise DataPlaneError("nfs", "mismatch", f"{export}/{name} differs over NFS")
        lines.append(f"nfs: read {export}/{name} back ({len(data)} bytes), same bytes")
    return lines


# -- iSCSI ------------------------------------------------------------------------------------


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _keys(data: bytes) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in data.decode(errors="replace").split("\0") if item)
    return {k: v for k, v in (p for p in pairs if len(p) == 2)}


#: Keys a target declares without expecting an answer.
_DECLARATIVE = {"MaxRecvDataSegmentLength", "TargetAlias", "TargetPortalGroupTag", "TargetAddress"}


class IscsiSession:
    """A minimal iSCSI initiator session (RFC 7143): no authentication, no digests.

    Example::

        with IscsiSession("127.0.0.1", 3260, "iqn.2000-01.com.synology:vdsm-ci.ci") as s:
            print(s.report_luns(), s.capacity(0))
    """

    INITIATOR = "iqn.2025-01.org.vdsm-ci:dataplane-check"

    def __init__(self, host: str, port: int, target: str | None, *, timeout: float = 20) -> None:
        self.target = target
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._itt = 0
        self._cmdsn = 1
        self._statsn = 0
        self._max_send = 8192
        self._isid = b"\x80" + secrets.token_bytes(5)
        self._login_flags = 0
        self._login()

    def __enter__(self) -> IscsiSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    # transport
    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the target closed the connection")
            buf += chunk
        return buf

    def _recv_pdu(self) -> tuple[bytes, bytes]:
        bhs = self._recv_exact(48)
        ahs = bhs[4] * 4
        dlen = int.from_bytes(bhs[5:8], "big")
        rest = self._recv_exact(ahs + dlen + (-dlen % 4))
        return bhs, rest[ahs : ahs + dlen]

    def _send(self, bhs: bytearray, data: bytes = b"") -> None:
        bhs[5:8] = len(data).to_bytes(3, "big")
        self._sock.sendall(bytes(bhs) + _pad(data))

    def _next_itt(self) -> int:
        self._itt += 1
        return self._itt

    # login
    def _login_step(self, flags: int, keys: dict[str, str]) -> dict[str, str]:
        bhs = bytearray(48)
        bhs[0] = 0x43  # immediate, Login Request
        bhs[1] = flags
        bhs[8:14] = self._isid
        bhs[16:20] = self._itt.to_bytes(4, "big")  # one task tag for the whole login
        bhs[24:28] = self._cmdsn.to_bytes(4, "big")
        bhs[28:32] = (self._statsn + 1).to_bytes(4, "big") if self._statsn else bytes(4)
        self._send(bhs, "".join(f"{k}={v}\0" for k, v in keys.items()).encode())
        resp, data = self._recv_pdu()
        if resp[0] & 0x3F != 0x23:
            raise ConnectionError(f"unexpected PDU 0x{resp[0]:02x} during login")
        self._statsn = int.from_bytes(resp[24:28], "big")
        status = (resp[36], resp[37])
        if status != (0, 0):
            raise PermissionError(f"login refused: status class {status[0]} detail {status[1]}")
        self._login_flags = resp[1]
        return _keys(data)

    def _login(self) -> None:
        kind = "Normal" if self.target else "Discovery"
        security = {"InitiatorName": self.INITIATOR, "SessionType": kind, "AuthMethod": "None"}
        if self.target:
            security["TargetName"] = self.target
        self._login_step(0x80 | (0 << 2) | 1, security)  # T, CSG security -> NSG operational
        offer = {
            "HeaderDigest": "None",
            "DataDigest": "None",
            "MaxRecvDataSegmentLength": "262144",
            "ImmediateData": "Yes",
            "InitialR2T": "Yes",
            "DefaultTime2Wait": "0",
            "DefaultTime2Retain": "0",
        }
        answer = self._login_step(0x80 | (1 << 2) | 3, offer)  # operational -> full feature
        # The target proposes the keys it wants settled (MaxBurstLength, ErrorRecoveryLevel,
        # ...) and waits: accept each of its values, then it moves to full feature.
        for _ in range(4):
            if self._login_flags & 0x83 == 0x83:  # T and NSG full feature
                break
            reply = {
                k: v
                for k, v in answer.items()
                if k not in offer and k not in _DECLARATIVE and not k.startswith("X")
            }
            offer |= reply
            answer |= self._login_step(0x80 | (1 << 2) | 3, reply)
        else:
            raise ConnectionError("the target did not finish the login")
        self._max_send = int(answer.get("MaxRecvDataSegmentLength", "8192"))

    # discovery
    def send_targets(self) -> dict[str, list[str]]:
        """Target name -> its advertised portals (``TargetAddress``), from SendTargets=All."""
        bhs = bytearray(48)
        bhs[0] = 0x44  # immediate, Text Request
        bhs[1] = 0x80
        bhs[16:20] = self._next_itt().to_bytes(4, "big")
        bhs[20:24] = b"\xff\xff\xff\xff"
        bhs[24:28] = self._cmdsn.to_bytes(4, "big")
        bhs[28:32] = (self._statsn + 1).to_bytes(4, "big")
        self._send(bhs, b"SendTargets=All\0")
        _, data = self._recv_pdu()
        targets: dict[str, list[str]] = {}
        current: list[str] = []
        for item in data.decode(errors="replace").split("\0"):
            key, _, value = item.partition("=")
            if key == "TargetName":
                current = targets.setdefault(value, [])
            elif key == "TargetAddress":
                current.append(value)
        return targets

    # SCSI
    def scsi(self, lun: int, cdb: bytes, *, read: int = 0, write: bytes = b"") -> bytes:
        """Run one SCSI command; return the data read. Retries a unit attention twice."""
        for _ in range(3):
            status, data, sense = self._scsi_once(lun, cdb, read, write)
            if status == 0:
                return data
            if status == 2 and len(sense) > 2 and sense[2] & 0x0F == 6:
                continue  # UNIT ATTENTION after login: DSM and LIO both report it once
            raise OSError(f"SCSI command 0x{cdb[0]:02x} failed: status {status}, sense {sense!r}")
        raise OSError(f"SCSI command 0x{cdb[0]:02x}: unit attention does not clear")

    def _scsi_once(self, lun: int, cdb: bytes, read: int, write: bytes) -> tuple[int, bytes, bytes]:
        if len(write) > self._max_send:
            raise ValueError(f"write of {len(write)} bytes exceeds {self._max_send}")
        itt = self._next_itt()
        bhs = bytearray(48)
        bhs[0] = 0x01
        bhs[1] = 0x80 | (0x40 if read else 0) | (0x20 if write else 0) | 0x01
        bhs[8:16] = bytes([0, lun]) + bytes(6)
        bhs[16:20] = itt.to_bytes(4, "big")
        bhs[20:24] = (read or len(write)).to_bytes(4, "big")
        bhs[24:28] = self._cmdsn.to_bytes(4, "big")
        bhs[28:32] = (self._statsn + 1).to_bytes(4, "big")
        bhs[32:48] = cdb.ljust(16, b"\0")
        self._cmdsn += 1
        self._send(bhs, write)  # immediate data
        received = bytearray(read)
        while True:
            resp, data = self._recv_pdu()
            opcode = resp[0] & 0x3F
            if opcode == 0x25:  # Data-In
                offset = int.from_bytes(resp[40:44], "big")
                received[offset : offset + len(data)] = data
                if resp[1] & 0x01:  # status with the last Data-In
                    self._statsn = int.from_bytes(resp[24:28], "big")
                    return resp[3], bytes(received), b""
            elif opcode == 0x21:  # SCSI Response
                self._statsn = int.from_bytes(resp[24:28], "big")
                sense = data[2:] if len(data) > 2 else b""
                return resp[3], bytes(received), sense
            elif opcode == 0x20:  # NOP-In: nothing to answer for a short check
                continue
            else:
                raise ConnectionError(f"unexpected PDU 0x{opcode:02x}")

    def report_luns(self) -> list[int]:
        """LUN numbers the target maps (REPORT LUNS)."""
        data = self.scsi(
            0, bytes([0xA0, 0, 0, 0, 0, 0]) + (1024).to_bytes(4, "big") + b"\0\0", read=1024
        )
        count = int.from_bytes(data[0:4], "big") // 8
        return [int.from_bytes(data[8 + 8 * i : 10 + 8 * i], "big") & 0x3FFF for i in range(count)]

    def capacity(self, lun: int) -> tuple[int, int]:
        """(bytes, block size) of ``lun`` (READ CAPACITY(16))."""
        cdb = bytes([0x9E, 0x10]) + bytes(8) + (32).to_bytes(4, "big") + b"\0\0"
        data = self.scsi(lun, cdb, read=32)
        last_lba, block = struct.unpack(">QI", data[:12])
        return (last_lba + 1) * block, block

    def write_block(self, lun: int, lba: int, block: bytes) -> None:
        cdb = bytes([0x2A, 0]) + lba.to_bytes(4, "big") + b"\0" + (1).to_bytes(2, "big") + b"\0"
        self.scsi(lun, cdb, write=block)

    def read_block(self, lun: int, lba: int, size: int) -> bytes:
        cdb = bytes([0x28, 0]) + lba.to_bytes(4, "big") + b"\0" + (1).to_bytes(2, "big") + b"\0"
        return self.scsi(lun, cdb, read=size)


def check_iscsi(ports: Endpoints, iqn: str, lun_bytes: int | None) -> list[str]:
    """Discover ``iqn``, log in, check its first LUN's capacity, write and read back its last
    block."""
    probe_port("iscsi", ports.host, ports.iscsi)
    try:
        with IscsiSession(ports.host, ports.iscsi, None) as discovery:
            targets = discovery.send_targets()
    except PermissionError as err:
        raise DataPlaneError("iscsi", "auth", f"discovery login: {err}") from err
    except OSError as err:
        raise DataPlaneError("iscsi", "refused", f"discovery: {err}") from err
    if iqn not in targets:
        raise DataPlaneError("iscsi", "target missing", f"{iqn} not among {sorted(targets)}")
    # The portal the target advertises is DSM's own address (behind the container's NAT,
    # 20.20.20.21:3260): initiators that log in where discovery points (iscsiadm, iscsi-ls -s,
    # the CSI node plugin) need a route to it; this check logs in to the published port.
    lines = [f"iscsi: discovered {iqn}, advertised at {', '.join(targets[iqn]) or '-'}"]
    if lun_bytes is None:
        return lines
    try:
        with IscsiSession(ports.host, ports.iscsi, iqn) as session:
            luns = session.report_luns()
            if not luns:
                raise DataPlaneError("iscsi", "lun missing", f"{iqn} maps no LUN")
            # The first mapped LUN: DSM numbers a target's LUNs by mapping index.
            number = min(luns)
            size, block = session.capacity(number)
            if size != lun_bytes:
                raise DataPlaneError(
                    "iscsi",
                    "mismatch",
                    f"LUN {number} of {iqn} has {size} bytes, want {lun_bytes}",
                )
            lba = size // block - 1
            pattern = (b"vdsm-ci data plane " + secrets.token_hex(8).encode()).ljust(block, b".")
            session.write_block(number, lba, pattern)
            if session.read_block(number, lba, block) != pattern:
                raise DataPlaneError("iscsi", "mismatch", f"block {lba} read back differs")
    except PermissionError as err:
        raise DataPlaneError("iscsi", "auth", f"login to {iqn}: {err}") from err
    except OSError as err:
        raise DataPlaneError("iscsi", "error", f"{iqn}: {err}") from err
    lines.append(f"iscsi: {iqn} LUN {number} has {size} bytes; wrote and read back block {lba}")
    return lines


# -- all --------------------------------------------------------------------------------------


def _nfs_v4(spec: ServicesSpec) -> bool:
    return spec.nfs and spec.nfs_v4


def write_build_file(
    ports: Endpoints, spec: ServicesSpec, *, user: str, password: str
) -> list[str]:
    """Write :data:`BUILD_FILE` into the first share of ``spec`` (over SMB, else NFSv4)."""
    share = spec.shares[0] if spec.shares else None
    if share is None:
        return ["build file: the spec has no share, none written"]
    if spec.smb:
        return check_smb(ports, share.name, user, password, BUILD_FILE, BUILD_FILE_DATA)
    if _nfs_v4(spec):
        return write_nfs(ports, str(share.path), BUILD_FILE, BUILD_FILE_DATA)
    return ["build file: neither SMB nor NFSv4 is on, none written"]


def check_build_file(
    ports: Endpoints, spec: ServicesSpec, *, user: str, password: str
) -> list[str]:
    """Read :data:`BUILD_FILE` back over SMB and over NFSv4 (each service ``spec`` turns on)."""
    share = spec.shares[0] if spec.shares else None
    if share is None or not (spec.smb or _nfs_v4(spec)):
        return []
    lines: list[str] = []
    if spec.smb:
        lines += read_smb(ports, share.name, user, password, BUILD_FILE, BUILD_FILE_DATA)
    if _nfs_v4(spec):
        lines += check_nfs(ports, str(share.path), BUILD_FILE, BUILD_FILE_DATA)
    return [f"{line} (written before the final checkpoint)" for line in lines]


def check(
    ports: Endpoints,
    spec: ServicesSpec,
    *,
    user: str,
    password: str,
    server_name: str,
    build_file: bool = False,
) -> DataPlaneReport:
    """Check every service ``spec`` turns on, on the first share and the LUN of ``spec``.

    SMB: a new file is copied into the first share as ``user`` and read back; NFS: that file is
    listed and read over NFSv4 (with SMB off, NFS writes its own). iSCSI: discovery, login,
    the first LUN's capacity against the spec, a block written and read back. With
    ``build_file``, :data:`BUILD_FILE` (which the services stage wrote before the checkpoint
    this DSM was restored from) is read back over SMB and NFS too.
    """
    report = DataPlaneReport()
    share = spec.shares[0] if spec.shares else None
    name = f"vdsm-ci-check-{secrets.token_hex(4)}.txt"
    if spec.smb and share is not None:
        data = f"written over SMB by the vdsm-ci data-plane check {name}\n".encode()
        report.lines += check_smb(ports, share.name, user, password, name, data)
    elif spec.smb:
        probe_port("smb", ports.host, ports.smb)
        report.lines.append(f"smb: {ports.host}:{ports.smb} is served (no share to copy into)")
    if spec.nfs and not spec.nfs_v4:
        # DSM then serves NFSv3 only, which needs the portmapper and mountd: not through the
        # published ports (see the README).
        report.lines.append("nfs: NFSv4 off (services.nfs_v4), NFSv3 not checked")
    elif spec.nfs and share is not None:
        if not spec.smb:
            data = f"written over NFS by the vdsm-ci data-plane check {name}\n".encode()
            report.lines += write_nfs(ports, str(share.path), name, data)
        report.lines += check_nfs(ports, str(share.path), name, data)
    if build_file:
        report.lines += check_build_file(ports, spec, user=user, password=password)
    if spec.iscsi is not None:
        iqn = spec.iscsi.target.iqn or dsm_iqn(server_name, spec.iscsi.target.name)
        lun = spec.iscsi.lun
        report.lun_bytes = lun.size_bytes if lun else None
        report.lines += check_iscsi(ports, iqn, report.lun_bytes)
    for line in report.lines:
        log.info("%s", line)
    return report


def write_nfs(ports: Endpoints, export: str, name: str, data: bytes) -> list[str]:
    """Write ``data`` as ``export/name`` over NFSv4."""
    probe_port("nfs", ports.host, ports.nfs)
    nfs_cp = _tool("nfs", "nfs-cp")
    with tempfile.TemporaryDirectory(prefix="vdsm-nfs-") as tmp:
        local = Path(tmp) / name
        local.write_bytes(data)
        _nfs_run([nfs_cp, str(local), _nfs_url(ports, f"{export}/{name}")])
    return [f"nfs: wrote {export}/{name} ({len(data)} bytes)"]
