#!/usr/bin/env bash
# What a restore of this final image needs, checked before QEMU starts. On the first need that
# this container does not meet it prints ONE line (what is missing and how to fix it) on stderr
# and exits 78; otherwise it prints nothing and exits 0.
#
# The state (/storage/final.state) was saved by one particular VM; `-incoming` fails to load it
# (or virtual-dsm changes the VM before QEMU starts) when the container cannot give the same one. What virtual-dsm v7.41 does
# here instead of refusing (vdsm/virtual-dsm tag v7.41):
# - src/reset.sh lowers CPU_CORES to the host's processor count, and exits 17 when RAM_SIZE plus
#   500000000 bytes (RAM_SPARE) exceeds the memory `free` reports available (not the cgroup's);
# - src/network.sh falls back from NAT (a tap device on a bridge: /dev/net/tun and NET_ADMIN) to
#   QEMU user networking, whose different netdev the snapshot does not load;
# - src/proc.sh exits 88 without a usable /dev/kvm, and under KVM the guest sees the host's CPU
#   (vendor, and the flags proc.sh decides on: sse4_2, invtsc through tsc_scale/tsc_scaling).
#
# The contract (/etc/vdsm-ci/restore.conf, written at flatten; the same values are labels of
# the image, vdsm-ci.restore.*):
#   RESTORE_ENV_NAMES  the variables that shaped the VM; RESTORE_ENV_<NAME> their values
#   RESTORE_CPU_VENDOR, RESTORE_CPU_FLAGS  the build host's CPU (checked for KVM images only)
# Plain bash and coreutils-free, so it needs nothing the base image may lack. Every path it
# reads can be moved by the environment, for tests (VDSM_CI_*).
set -u

conf=${VDSM_CI_RESTORE_CONF:-/etc/vdsm-ci/restore.conf}
cpuinfo=${VDSM_CI_CPUINFO:-/proc/cpuinfo}
meminfo=${VDSM_CI_MEMINFO:-/proc/meminfo}
status=${VDSM_CI_PROC_STATUS:-/proc/self/status}
cgroup=${VDSM_CI_CGROUP:-/sys/fs/cgroup}
tun=${VDSM_CI_TUN:-/dev/net/tun}
kvm=${VDSM_CI_KVM:-/dev/kvm}
# virtual-dsm v7.41 src/reset.sh: RAM_SPARE, what it keeps free beside the guest's RAM
RAM_SPARE=500000000

refuse() {
  echo "vdsm-ci: this container cannot restore the image's snapshot: $*" >&2
  exit 78
}

[ -r "$conf" ] || refuse "its contract $conf is missing: use an image built by vdsm-ci's flatten"
# shellcheck disable=SC1090
. "$conf"

# 1. The VM's shape: every variable the snapshot was taken with, unchanged.
for name in ${RESTORE_ENV_NAMES:-}; do
  want=RESTORE_ENV_$name
  if [ "${!name-}" != "${!want}" ]; then
    refuse "$name is '${!name-}' but the snapshot was taken with $name='${!want}': start without -e $name (the image sets it)"
  fi
done

# bytes SIZE: virtual-dsm's RAM_SIZE syntax (512M, 2G, 1.5G; a bare number under 130 is GiB)
bytes() {
  local v=${1^^} unit int frac
  v=${v// /}
  v=${v%B}
  case $v in
    *[KMGT]) unit=${v: -1} v=${v%?} ;;
    *) if [ "${v%%.*}" -lt 130 ]; then unit=G; else unit=M; fi ;;
  esac
  int=${v%%.*} frac=0
  [ "$int" != "$v" ] && frac=${v#*.}
  local mult
  case $unit in K) mult=1024 ;; M) mult=1048576 ;; G) mult=1073741824 ;; T) mult=1099511627776 ;; esac
  echo $((int * mult + (10#${frac:-0} * mult) / (10 ** ${#frac})))
}

# 2. Networking: NAT (virtual-dsm's default, NETWORK=Y) puts a tap device on a bridge.
case "${NETWORK:-Y}" in
  [Nn]* | [Uu][Ss][Ee][Rr]*) ;;
  *)
    if [[ "${DHCP:-N}" != [Yy1]* ]] && [ ! -c "$tun" ]; then
      refuse "no $tun for the snapshot's NAT network: add --device /dev/net/tun --cap-add NET_ADMIN"
    fi
    # CAP_NET_ADMIN is capability 12 (linux/capability.h)
    capeff=$(while read -r key value; do [ "$key" = CapEff: ] && echo "$value"; done <"$status")
    if (((16#${capeff:-0} >> 12 & 1) == 0)); then
      refuse "no NET_ADMIN capability for the snapshot's NAT network: add --cap-add NET_ADMIN (with --device /dev/net/tun)"
    fi
    ;;
esac

# 3. CPU cores: the host's processors (what v7.41 reset.sh counts), the cpuset this container
#    may use (--cpuset-cpus), and its CFS quota (--cpus; cgroup v1 or v2).
cores=${CPU_CORES:-2}
host=0
while read -r key _; do [ "$key" = processor ] && host=$((host + 1)); done <"$cpuinfo"
if [ "$host" -gt 0 ] && [ "$cores" -gt "$host" ]; then
  refuse "CPU_CORES=$cores but this host has $host CPU(s): run the image on a host with at least $cores CPUs"
fi
allowed=$(while read -r key value; do [ "$key" = Cpus_allowed_list: ] && echo "$value"; done <"$status")
if [ -n "$allowed" ]; then
  n=0
  IFS=, read -ra ranges <<<"$allowed"
  for r in "${ranges[@]}"; do
    if [[ $r == *-* ]]; then n=$((n + ${r#*-} - ${r%-*} + 1)); else n=$((n + 1)); fi
  done
  if [ "$cores" -gt "$n" ]; then
    refuse "CPU_CORES=$cores but --cpuset-cpus lets this container use $n CPU(s) ($allowed): allow at least $cores CPUs"
  fi
fi
quota=-1 period=100000
if [ -r "$cgroup/cpu.max" ]; then # v2: "max 100000" or "150000 100000"
  read -r quota period <"$cgroup/cpu.max"
  [ "$quota" = max ] && quota=-1
elif [ -r "$cgroup/cpu/cpu.cfs_quota_us" ]; then # v1
  quota=$(<"$cgroup/cpu/cpu.cfs_quota_us")
  period=$(<"$cgroup/cpu/cpu.cfs_period_us")
fi
if [ "$quota" -gt 0 ] && ((cores * period > quota)); then
  refuse "CPU_CORES=$cores but --cpus gives this container $((quota / period)).$(((quota % period) * 100 / period)) CPUs: start with --cpus=$cores or more (or without --cpus)"
fi

# 4. Memory: the guest's RAM plus v7.41's spare, within the cgroup's limit (--memory; v1 or v2)
#    and within what the host has available (v7.41 reset.sh exits 17 otherwise).
need=$(($(bytes "${RAM_SIZE:-2G}") + RAM_SPARE))
mib() { echo "$((($1 + 1048575) / 1048576))m"; }
limit=
if [ -r "$cgroup/memory.max" ]; then
  limit=$(<"$cgroup/memory.max")
elif [ -r "$cgroup/memory/memory.limit_in_bytes" ]; then
  limit=$(<"$cgroup/memory/memory.limit_in_bytes")
fi
if [[ $limit =~ ^[0-9]+$ ]] && [ "$limit" -lt "$need" ]; then
  refuse "--memory allows $(mib "$limit") but RAM_SIZE=${RAM_SIZE:-2G} needs $(mib "$need") (guest RAM + 500 MB): start with --memory=$(mib "$need") or more"
fi
if [[ "${RAM_CHECK:-Y}" != [Nn]* ]]; then
  avail=$(while read -r key value _; do [ "$key" = MemAvailable: ] && echo "$value"; done <"$meminfo")
  if [ -n "$avail" ] && [ $((avail * 1024)) -lt "$need" ]; then
    refuse "the host has $(mib $((avail * 1024))) of memory available but RAM_SIZE=${RAM_SIZE:-2G} needs $(mib "$need") (guest RAM + 500 MB): free memory or use a host with more"
  fi
fi

# 5. KVM images: /dev/kvm, and the build host's CPU vendor and flags (the guest sees the host's).
if [[ "${KVM:-Y}" != [Nn]* ]]; then
  if [ ! -c "$kvm" ] || [ ! -w "$kvm" ]; then
    refuse "the snapshot was taken under KVM and $kvm is missing or not writable: add --device /dev/kvm on a host with KVM (or use the image's TCG variant)"
  fi
  vendor= flags=
  while IFS=: read -r key value; do
    key=${key%"${key##*[![:space:]]}"}
    case $key in
      vendor_id) [ -z "$vendor" ] && vendor=${value# } ;;
      flags | "vmx flags") flags+=" ${value# }" ;;
    esac
    # the first processor's block is enough: all of a host's processors are alike
    [ -z "$key" ] && [ -n "$vendor" ] && break
  done <"$cpuinfo"
  if [ -n "${RESTORE_CPU_VENDOR:-}" ] && [ "$vendor" != "$RESTORE_CPU_VENDOR" ]; then
    refuse "the snapshot was taken under KVM on a $RESTORE_CPU_VENDOR CPU and this host's is ${vendor:-unknown}: restore it on a $RESTORE_CPU_VENDOR host (or use the image's TCG variant)"
  fi
  for flag in ${RESTORE_CPU_FLAGS:-}; do
    if [[ " $flags " != *" $flag "* ]]; then
      refuse "the snapshot was taken under KVM on a CPU with '$flag' and this host's CPU lacks it: restore it on a host whose CPU has $RESTORE_CPU_FLAGS (or use the image's TCG variant)"
    fi
  done
fi
exit 0
