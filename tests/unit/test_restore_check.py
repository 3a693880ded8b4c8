"""The final image's restore check (``vdsmlib/pipeline/assets/restore-check.sh``), run by real
bash against a container's view of its host laid out in files: ``/proc/cpuinfo``,
``/proc/meminfo``, ``/proc/self/status`` (capabilities, the cpuset), the cgroup's CPU quota and
memory limit (v1, as Docker 20.10 here, and v2), ``/dev/net/tun`` and ``/dev/kvm``. The contract
file is the one flatten writes (:func:`vdsmlib.pipeline.flatten.restore_conf`).

What the check stands in for is virtual-dsm v7.41's own handling (vdsm/virtual-dsm tag v7.41):
src/reset.sh lowers CPU_CORES to the host's processor count and exits 17 when RAM_SIZE plus
500000000 bytes exceeds the available memory; src/network.sh falls back from NAT to user
networking without tun/NET_ADMIN; src/proc.sh exits 88 without /dev/kvm. Each of those makes a
restore fail later, with QEMU's message or a bare exit code.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vdsmlib.docker import labels as L
from vdsmlib.params import load_params
from vdsmlib.pipeline.flatten import (
    RESTORE_IO_ENV,
    final_env,
    image_env,
    restore_conf,
    restore_contract,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "vdsmlib" / "pipeline" / "assets" / "restore-check.sh"
#: CapEff of a Docker container with --cap-add NET_ADMIN (the default set plus bit 12)
CAPS_NET_ADMIN = "00000000a80435fb"
#: Docker's default capabilities: no NET_ADMIN
CAPS_DEFAULT = "00000000a80425fb"


def cpuinfo(vendor: str = "GenuineIntel", processors: int = 2, flags: str = "sse4_2 vmx") -> str:
    block = (
        "processor\t: {n}\nvendor_id\t: {vendor}\nmodel name\t: a CPU\n"
        "flags\t\t: fpu vme {flags}\nvmx flags\t: vnmi tsc_scaling\n\n"
    )
    return "".join(block.format(n=n, vendor=vendor, flags=flags) for n in range(processors))


@dataclass
class Host:
    """A container's view of its host, in files under ``root``."""

    root: Path
    cpu: str = field(default_factory=cpuinfo)
    mem_available_kb: int = 20_000_000
    caps: str = CAPS_NET_ADMIN
    cpus_allowed: str = "0-1"
    tun: bool = True
    kvm: bool = False

    def run(
        self, contract_env: dict[str, str], *, build_cpu: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """The check with the image's ENV (``contract_env``, as flatten records it) plus
        ``env`` (what ``docker run -e`` would add or change)."""
        accelerator = "kvm" if contract_env.get("KVM", "Y") != "N" else "tcg"
        contract = restore_contract(contract_env, accelerator, build_cpu or cpuinfo())
        (self.root / "restore.conf").write_text(restore_conf(contract_env, contract))
        (self.root / "cpuinfo").write_text(self.cpu)
        (self.root / "meminfo").write_text(
            f"MemTotal:       24000000 kB\nMemAvailable:   {self.mem_available_kb} kB\n"
        )
        (self.root / "status").write_text(
            f"Name:\tbash\nCapEff:\t{self.caps}\nCpus_allowed_list:\t{self.cpus_allowed}\n"
        )
        (self.root / "cgroup").mkdir(exist_ok=True)
        environ = {
            "PATH": os.environ["PATH"],
            "VDSM_CI_RESTORE_CONF": str(self.root / "restore.conf"),
            "VDSM_CI_CPUINFO": str(self.root / "cpuinfo"),
            "VDSM_CI_MEMINFO": str(self.root / "meminfo"),
            "VDSM_CI_PROC_STATUS": str(self.root / "status"),
            "VDSM_CI_CGROUP": str(self.root / "cgroup"),
            # a character device that exists (and is writable) or a path that does not
            "VDSM_CI_TUN": "/dev/null" if self.tun else str(self.root / "no-tun"),
            "VDSM_CI_KVM": "/dev/null" if self.kvm else str(self.root / "no-kvm"),
            **contract_env,
            **env,
        }
        return subprocess.run(
            ["bash", str(SCRIPT)], capture_output=True, text=True, env=environ, timeout=30
        )

    def cgroup(self, name: str, value: str) -> None:
        path = self.root / "cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.fixture
def sim_env() -> dict[str, str]:
    """What the simulator's TCG final image records: 1 core, 512M, NAT networking."""
    return final_env(load_params("sim"), "tcg")


@pytest.fixture
def dsm_kvm_env() -> dict[str, str]:
    """What real DSM 7.2.2's KVM final image records: 2 cores, 2G."""
    return final_env(load_params("7.2.2"), "kvm")


def refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one line of a refusal, checked to name ``words``."""
    assert done.returncode == 78, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_a_host_that_meets_the_contract_passes_silently(host: Host, sim_env: dict) -> None:
    done = host.run(sim_env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_kvm_image_on_a_like_host_passes(host: Host, dsm_kvm_env: dict) -> None:
    host.kvm = True
    done = host.run(dsm_kvm_env)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_every_variable_that_shaped_the_vm_must_stay(host: Host, sim_env: dict) -> None:
    assert host.run(sim_env, CPU_CORES="2").returncode == 78
    line = refused(host.run(sim_env, RAM_SIZE="1G"), "RAM_SIZE", "'1G'", "'512M'", "-e RAM_SIZE")
    assert line.startswith("vdsm-ci: ")
    # the target's own `env` too (a simulator knob as an example)
    params = load_params("sim", {"env": {"SIM_INSTALL_DELAY": "3"}})
    env = final_env(params, "tcg")
    assert host.run(env).returncode == 0
    refused(host.run(env, SIM_INSTALL_DELAY="0"), "SIM_INSTALL_DELAY")
    refused(host.run(env, SIM_INSTALL_DELAY=""), "SIM_INSTALL_DELAY is ''")


def test_nat_needs_tun_and_net_admin(host: Host, sim_env: dict) -> None:
    host.tun = False
    refused(host.run(sim_env), "/dev/net/tun", "--device /dev/net/tun --cap-add NET_ADMIN")
    host.tun, host.caps = True, CAPS_DEFAULT
    refused(host.run(sim_env), "NET_ADMIN", "--cap-add NET_ADMIN")


def test_user_networking_needs_neither(host: Host, sim_env: dict) -> None:
    host.tun, host.caps = False, CAPS_DEFAULT
    assert host.run({**sim_env, "NETWORK": "user"}).returncode == 0
    # DHCP (macvtap, virtual-dsm src/network.sh configureDHCP) needs NET_ADMIN but no tun
    host.caps = CAPS_NET_ADMIN
    assert host.run({**sim_env, "DHCP": "Y"}).returncode == 0


def test_more_cores_than_the_host_has(host: Host, dsm_kvm_env: dict) -> None:
    host.kvm, host.cpu = True, cpuinfo(processors=1)
    refused(host.run(dsm_kvm_env), "CPU_CORES=2", "1 CPU")


def test_more_cores_than_the_cpuset(host: Host, dsm_kvm_env: dict) -> None:
    host.kvm, host.cpus_allowed = True, "3"
    refused(host.run(dsm_kvm_env), "CPU_CORES=2", "--cpuset-cpus", "1 CPU(s) (3)")
    host.cpus_allowed = "0,2-3"
    assert host.run(dsm_kvm_env).returncode == 0


def test_more_cores_than_the_cfs_quota_v1(host: Host, sim_env: dict) -> None:
    host.cgroup("cpu/cpu.cfs_quota_us", "50000")
    host.cgroup("cpu/cpu.cfs_period_us", "100000")
    refused(host.run(sim_env), "CPU_CORES=1", "--cpus gives this container 0.50 CPUs", "--cpus=1")
    host.cgroup("cpu/cpu.cfs_quota_us", "-1")
    assert host.run(sim_env).returncode == 0


def test_more_cores_than_the_cfs_quota_v2(host: Host, dsm_kvm_env: dict) -> None:
    host.kvm = True
    host.cgroup("cpu.max", "150000 100000")
    refused(host.run(dsm_kvm_env), "CPU_CORES=2", "1.50 CPUs", "--cpus=2")
    host.cgroup("cpu.max", "200000 100000")
    assert host.run(dsm_kvm_env).returncode == 0
    host.cgroup("cpu.max", "max 100000")
    assert host.run(dsm_kvm_env).returncode == 0


# RAM_SIZE 512M + virtual-dsm's 500000000 spare = 1036870912 bytes = 989 MiB (rounded up)
def test_memory_limit_v1(host: Host, sim_env: dict) -> None:
    host.cgroup("memory/memory.limit_in_bytes", str(600 * 1024 * 1024))
    refused(host.run(sim_env), "--memory allows 600m", "RAM_SIZE=512M needs 989m", "--memory=989m")
    host.cgroup("memory/memory.limit_in_bytes", str(1036870912))
    assert host.run(sim_env).returncode == 0
    host.cgroup("memory/memory.limit_in_bytes", "9223372036854771712")  # no limit
    assert host.run(sim_env).returncode == 0


def test_memory_limit_v2(host: Host, dsm_kvm_env: dict) -> None:
    host.kvm = True
    host.cgroup("memory.max", str(2 * 1024**3))
    # 2G + 500000000 bytes = 2647483648 bytes = 2525 MiB (rounded up)
    refused(host.run(dsm_kvm_env), "--memory allows 2048m", "needs 2525m", "--memory=2525m")
    host.cgroup("memory.max", "max")
    assert host.run(dsm_kvm_env).returncode == 0


def test_memory_the_host_has_available(host: Host, sim_env: dict) -> None:
    host.mem_available_kb = 900_000
    refused(host.run(sim_env), "available", "needs 989m")
    # virtual-dsm's own switch for its check (src/reset.sh RAM_CHECK) skips this one too
    assert host.run({**sim_env, "RAM_CHECK": "N"}).returncode == 0


@pytest.mark.parametrize(
    ("ram", "need_mib"),
    # virtual-dsm's RAM_SIZE forms (src/reset.sh): a bare number under 130 is GiB, else MiB
    [("1.5G", 2013), ("2", 2525), ("1024", 1501), ("512MB", 989)],
)
def test_ram_size_forms(host: Host, sim_env: dict, ram: str, need_mib: int) -> None:
    host.cgroup("memory/memory.limit_in_bytes", str(256 * 1024 * 1024))
    refused(host.run({**sim_env, "RAM_SIZE": ram}), f"needs {need_mib}m")


def test_a_kvm_image_needs_kvm(host: Host, dsm_kvm_env: dict) -> None:
    refused(host.run(dsm_kvm_env), "under KVM", "--device /dev/kvm", "TCG variant")


def test_a_kvm_image_on_another_cpu_vendor(host: Host, dsm_kvm_env: dict) -> None:
    host.kvm, host.cpu = True, cpuinfo("AuthenticAMD", flags="sse4_2 svm")
    refused(host.run(dsm_kvm_env), "GenuineIntel", "AuthenticAMD", "TCG variant")


def test_a_kvm_image_on_a_cpu_without_a_flag_it_needs(host: Host, dsm_kvm_env: dict) -> None:
    host.kvm, host.cpu = True, cpuinfo(flags="vmx")  # no sse4_2
    refused(host.run(dsm_kvm_env), "'sse4_2'")
    # the build host's flags are recorded in its labels, from "flags" and "vmx flags"
    contract = restore_contract(dsm_kvm_env, "kvm", cpuinfo())
    assert contract[L.RESTORE_CPU_FLAGS] == "sse4_2 tsc_scaling vmx"
    assert contract[L.RESTORE_CPU_VENDOR] == "GenuineIntel"


def test_a_tcg_image_runs_on_any_cpu(host: Host, sim_env: dict) -> None:
    host.cpu = cpuinfo("AuthenticAMD", flags="svm")
    assert host.run(sim_env).returncode == 0


def test_a_missing_contract_is_named(host: Host, sim_env: dict) -> None:
    done = host.run(sim_env, VDSM_CI_RESTORE_CONF=str(host.root / "nowhere.conf"))
    refused(done, "nowhere.conf")


def test_the_labels_say_how_to_run(dsm_kvm_env: dict, sim_env: dict) -> None:
    kvm = restore_contract(dsm_kvm_env, "kvm", cpuinfo())
    assert kvm[L.RESTORE_RUN] == "--device /dev/net/tun --cap-add NET_ADMIN --device /dev/kvm"
    assert (kvm[L.RESTORE_CPU_CORES], kvm[L.RESTORE_RAM_SIZE]) == ("2", "2G")
    user = restore_contract({**sim_env, "NETWORK": "user"}, "tcg", cpuinfo())
    assert user[L.RESTORE_RUN] == ""


def test_disk_io_is_the_containers_choice(host: Host, sim_env: dict) -> None:
    """The final image opens its disks buffered (DISK_CACHE=unsafe, DISK_IO=threads: every
    write goes to -snapshot's temporary overlays), and the check lets a container change that:
    how QEMU opens the disks is no part of the saved VM."""
    env = image_env(load_params("sim"), "tcg")
    assert {k: env[k] for k in RESTORE_IO_ENV} == {"DISK_CACHE": "unsafe", "DISK_IO": "threads"}
    assert not set(RESTORE_IO_ENV) & set(sim_env)
    assert "DISK_CACHE" not in restore_conf(sim_env, restore_contract(sim_env, "tcg", cpuinfo()))
    done = host.run(sim_env, DISK_CACHE="none", DISK_IO="native")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    # a target whose env sets them keeps its own, and then they are part of its VM
    params = load_params("sim")
    params.env["DISK_CACHE"] = "writeback"
    mine = image_env(params, "tcg")
    assert mine["DISK_CACHE"] == "writeback" and mine["DISK_IO"] == "threads"
    assert final_env(params, "tcg")["DISK_CACHE"] == "writeback"
