"""What monitoring clients poll, answered field by field as DSM answers it.

The keys and their JSON types are those of the recorded real-DSM answers in
:mod:`vdsmlib.dsm.recorded` (``tests/webapi/test_webapi_recorded_shapes.py`` checks every key);
the values are the simulated DSM's own: one virtual disk, one basic pool, one Btrfs volume, no
USB device, no fan, no pending update, and the guest's real load average and memory.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .state import VOLUME_PATH, VOLUME_TOTAL_BYTES, SimState

__all__ = [
    "external_usb_list",
    "fan_speed",
    "load_info",
    "network_get",
    "security_status",
    "upgrade_check",
    "utilization",
]

#: The virtual disk's size: the volume and DSM's system partitions.
DISK_BYTES = VOLUME_TOTAL_BYTES + (1 << 31)


def _meminfo() -> dict[str, int]:
    """``/proc/meminfo`` in KiB (empty off Linux)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                name, _, rest = line.partition(":")
                out[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def _loads() -> tuple[int, int, int]:
    """1-, 5- and 15-minute load averages as DSM gives them: hundredths, integers."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        one = five = fifteen = 0.0
    return round(one * 100), round(five * 100), round(fifteen * 100)


def utilization() -> dict[str, Any]:
    """``SYNO.Core.System.Utilization`` ``get``."""
    one, five, fifteen = _loads()
    mem = _meminfo()
    total = mem.get("MemTotal", 1048576)
    avail = mem.get("MemAvailable", total // 2)
    swap_total = mem.get("SwapTotal", 0)
    swap_free = mem.get("SwapFree", 0)
    io = {"read_access": 0, "read_byte": 0, "write_access": 0, "write_byte": 0, "utilization": 0}
    return {
        "cpu": {
            "device": "System",
            "user_load": 1,
            "system_load": 1,
            "other_load": 0,
            "1min_load": one,
            "5min_load": five,
            "15min_load": fifteen,
        },
        "memory": {
            "device": "Memory",
            "memory_size": total,
            "total_real": total,
            "avail_real": avail,
            "buffer": mem.get("Buffers", 0),
            "cached": mem.get("Cached", 0),
            "real_usage": round(100 * (total - avail) / total) if total else 0,
            "total_swap": swap_total,
            "avail_swap": swap_free,
            "swap_usage": round(100 * (swap_total - swap_free) / swap_total) if swap_total else 0,
            "si_disk": 0,
            "so_disk": 0,
        },
        "network": [{"device": "total", "rx": 0, "tx": 0}, {"device": "eth0", "rx": 0, "tx": 0}],
        "disk": {
            "disk": [
                {"device": "sata1", "display_name": "Drive 1", "type": "internal", **io},
            ],
            "total": {"device": "total", **io},
        },
        "space": {
            "volume": [{"device": "md2", "display_name": "volume1", **io}],
            "total": {"device": "total", **io},
        },
        "lun": [],
        "time": int(time.time()),
    }


_SCAN_CATEGORIES = ("malware", "network", "securitySetting", "systemCheck", "update", "userInfo")


def security_status() -> dict[str, Any]:
    """``SYNO.Core.SecurityScan.Status`` ``system_get``: Security Advisor's last scan, all safe."""
    fail = {"danger": 0, "info": 0, "outOfDate": 0, "risk": 0, "warning": 0}
    items = {
        name: {
            "category": name,
            "fail": dict(fail),
            "failSeverity": "safe",
            "progress": 100,
            "runningItem": "",
            "total": 0,
            "waitNum": 0,
        }
        for name in _SCAN_CATEGORIES
    }
    return {
        "items": items,
        "lastScanTime": "0",
        "startTime": "",
        "success": True,
        "sysProgress": 100,
        "sysStatus": "safe",
    }


def upgrade_check() -> dict[str, Any]:
    """``SYNO.Core.Upgrade.Server`` ``check``: no update (the simulated DSM never has one)."""
    return {"update": {"available": False}}


def external_usb_list() -> dict[str, Any]:
    """``SYNO.Core.ExternalDevice.Storage.USB`` ``list``: a Virtual DSM has no USB disk."""
    return {"devices": []}


def fan_speed() -> dict[str, Any]:
    """``SYNO.Core.Hardware.FanSpeed`` ``get``."""
    return {
        "all_disk_temp_fail": "no",
        "cool_fan": "no",
        "dual_fan_speed": "coolfan",
        "fan_support_adjust_by_ext_nic": "no",
        "fan_type": 0,
    }


def network_get(state: SimState) -> dict[str, Any]:
    """``SYNO.Core.Network`` ``get``: the general network settings (server name, gateway, DNS)."""
    return {
        "server_name": state.hostname,
        "gateway": state.gateway_ip(),
        "v6gateway": "",
        "dns_manual": False,
        "dns_primary": "10.0.2.3",
        "dns_secondary": "",
        "enable_ip_conflict_detect": True,
        "enable_windomain": False,
        "ipv4_first": False,
        "multi_gateway": False,
        "arp_ignore": True,
        "use_dhcp_domain": True,
        "gateway_info": {"ifname": "eth0", "ip": state.gateway_ip(), "type": "ethernet"},
    }


def _can(*, stop: bool = False) -> dict[str, Any]:
    return {"can_do": False, "errCode": 0, "stopService": stop}


def _vspace_can_do() -> dict[str, Any]:
    return {
        "drbd": {"resize": _can()},
        "flashcache": {"apply": _can(), "remove": _can(), "resize": _can()},
        "snapshot": {"resize": _can()},
    }


def _space_common(kind: str) -> dict[str, Any]:
    """The keys DSM gives a pool and a volume alike."""
    return {
        "cacheStatus": "",
        "can_do": {
            "data_scrubbing": True,
            "delete": True,
            "expand_by_disk": 0,
            "migrate": {"to_raid5+spare": "", "to_raid6": 0},
            "raid_cross": False,
        },
        "container": "internal",
        "desc": "",
        "device_type": "basic",
        "disk_failure_number": 0,
        "drive_type": 0,
        "is_actioning": False,
        "is_scheduled": False,
        "is_writable": True,
        "last_done_time": 0,
        "limited_disk_number": 1,
        "next_schedule_time": 0,
        "num_id": 1,
        "pool_path": "reuse_1",
        "progress": {"percent": "-1", "step": "none"},
        "raidType": "single",
        "scrubbingStatus": "no_action",
        "ssd_trim": {"support": "not support"},
        "status": "normal",
        "suggestions": [],
        "timebackup": False,
        "vspace_can_do": _vspace_can_do(),
    } | ({"deploy_path": "volume_1"} if kind == "pool" else {"deploy_path": ""})


def _disk() -> dict[str, Any]:
    return {
        "id": "sata1",
        "name": "Drive 1",
        "longName": "Drive 1",
        "device": "/dev/sata1",
        "model": "Virtual Disk",
        "vendor": "QEMU",
        "firm": "2.5+",
        "serial": "",
        "diskType": "SATA",
        "portType": "normal",
        "disk_code": "",
        "size_total": str(DISK_BYTES),
        "temp": 0,
        "status": "normal",
        "overview_status": "normal",
        "smart_status": "normal",
        "smart_progress": "",
        "smart_test_limit": 0,
        "smart_testing": False,
        "testing_progress": "",
        "testing_type": "idle",
        "adv_progress": "",
        "adv_status": "not_support",
        "below_remain_life_thr": False,
        "exceed_bad_sector_thr": False,
        "remain_life": -1,
        "remote_info": {"compatibility": "disabled", "unc": 0},
        "compatibility": "support",
        "container": {
            "order": 0,
            "str": "DS",
            "supportPwrBtnDisable": False,
            "type": "internal",
        },
        "disable_secera": False,
        "erase_time": 0,
        "has_system": True,
        "ihm_testing": False,
        "is4Kn": False,
        "isSsd": False,
        "isSynoPartition": True,
        "is_erasing": False,
        "num_id": 1,
        "order": 1,
        "pciSlot": -1,
        "perf_testing": False,
        "support": False,
        "tray_status": "join",
        "unc": 0,
        "used_by": "reuse_1",
    }


def load_info(state: SimState) -> dict[str, Any]:
    """``SYNO.Storage.CGI.Storage`` ``load_info``: disks, pools, volumes and the environment."""
    free = state.volume_free_bytes()
    used = VOLUME_TOTAL_BYTES - free
    pool = _space_common("pool") | {
        "id": "reuse_1",
        "disks": ["sata1"],
        "maximal_disk_size": "0",
        "minimal_disk_size": str(DISK_BYTES),
        "space_path": "/dev/md2",
        "size": {"total": str(VOLUME_TOTAL_BYTES), "used": str(VOLUME_TOTAL_BYTES)},
        "raids": [
            {
                "designedDiskCount": 1,
                "devices": [{"id": "sata1", "slot": 0, "status": "normal"}],
                "hasParity": False,
                "minDevSize": str(VOLUME_TOTAL_BYTES),
                "normalDevCount": 1,
                "raidPath": "/dev/md2",
                "raidStatus": 1,
                "spares": [],
            }
        ],
    }
    volume = _space_common("volume") | {
        "id": "volume_1",
        "vol_path": VOLUME_PATH,
        "fs_type": "btrfs",
        "disks": [],
        "atime_checked": False,
        "atime_opt": "relatime",
        "eppool_used": "0",
        "exist_alive_vdsm": False,
        "is_acting": False,
        "is_inode_full": False,
        "max_fs_size": "1152921504606846976",
        "used_by_gluster": False,
        "size": {
            "free_inode": "0",
            "total": str(VOLUME_TOTAL_BYTES),
            "total_device": str(VOLUME_TOTAL_BYTES),
            "total_inode": "0",
            "used": str(used),
        },
    }
    return {
        "disks": [_disk()],
        "storagePools": [pool],
        "volumes": [volume],
        "hotSpares": [],
        "hotSpareConf": {"cross_repair": False, "disable_repair": []},
        "iscsiLuns": [],
        "iscsiTargets": [],
        "ports": [],
        "ssdCaches": [],
        "env": {
            "batchtask": {"max_task": 64, "remain_task": 64},
            "bay_number": "1",
            "data_scrubbing": {"sche_enabled": "0", "sche_status": "disabled"},
            "ebox": [],
            "fs_acting": False,
            "isSyncSysPartition": False,
            "is_space_actioning": False,
            "isns": {"address": "", "enabled": False},
            "isns_server": "",
            "max_fs_bytes": "118747255799808",
            "max_fs_bytes_high_end": "219902325555200",
            "model_name": "VirtualDSM",
            "ram_enough_for_fs_high_end": False,
            "ram_size": 1,
            "ram_size_required": 32,
            "showpooltab": True,
            "status": {"system_crashed": False, "system_need_repair": False},
            "support": {"ebox": False, "raid_cross": False, "sysdef": True},
            "support_fit_fs_limit": True,
            "unique_key": "",
            "volume_full_critical": 0.1,
            "volume_full_warning": 0.2,
        },
    }
