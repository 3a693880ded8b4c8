#!/usr/bin/env bash
# Defaults, logging helpers, memory check, runtime files, the wait page (nginx).
# Follows vdsm/virtual-dsm v7.41 src/reset.sh: dsm.url and qemu.* are removed at every start,
# CPU_CORES above the host's cores is capped to them, a RAM_SIZE larger than the available
# memory exits 17, on tmpfs/ecryptfs the disks fall back to threads + writeback (no O_DIRECT),
# nginx serves the wait page on 5000. Like 7.41 it reads no MACHINE, QMP or MONITOR: the
# machine is always q35, and QMP is reached the way 7.41 allows it, through ARGUMENTS.
set -Eeuo pipefail

info() { echo "❯ $*"; }
warn() { echo "❯ Warning: $*" >&2; }
error() { echo "❯ ERROR: $*" >&2; }

: "${APP:=Virtual DSM}"
: "${STORAGE:=/storage}"
: "${KVM:=Y}"
: "${RAM_SIZE:=512M}"
: "${RAM_CHECK:=Y}"
: "${CPU_CORES:=1}"
: "${DISK_SIZE:=2G}"
: "${ALLOCATE:=}"
: "${DEBUG:=N}"
: "${ARGUMENTS:=}"
# read only by the twin of a release from 7.63 on (7.41 reads none of them)
: "${MACHINE:=q35}"
: "${QMP:=}"
: "${MONITOR:=}"
: "${WEB:=Y}"

# The release this twin follows (the image's build argument UPSTREAM): 7.41 or the newest.
UPSTREAM=$(tr -cd '0-9.' < /run/version)
# atLeast 7.63: the release followed is 7.63 or newer
atLeast() {
    local want_major want_minor have_major have_minor
    IFS=. read -r want_major want_minor <<< "$1"
    IFS=. read -r have_major have_minor <<< "$UPSTREAM"
    ((have_major > want_major || (have_major == want_major && have_minor >= want_minor)))
}

PROCESS="${APP,,}"
PROCESS="${PROCESS// /-}"
RUN_DIR=/run/shm
QEMU_PID="$RUN_DIR/qemu.pid"
QEMU_LOG="$RUN_DIR/qemu.log"
QEMU_OUT="$RUN_DIR/qemu.out"
QEMU_END="$RUN_DIR/qemu.end"
PAGE="$RUN_DIR/index.html"
TEMPLATE=/var/www/index.html

mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR"/qemu.* "$RUN_DIR/dsm.url"

if [ ! -d "$STORAGE" ]; then
    mkdir -p "$STORAGE" || { error "cannot create the storage directory $STORAGE"; exit 13; }
fi
if [ ! -w "$STORAGE" ]; then
    error "the storage directory $STORAGE is not writable"
    exit 13
fi

CORES=$(grep -c '^processor' /proc/cpuinfo)
CPU_CORES="${CPU_CORES// /}"
[[ "${CPU_CORES,,}" == "max" ]] && CPU_CORES="$CORES"
if [ -n "${CPU_CORES//[0-9]/}" ] || [ -z "$CPU_CORES" ]; then
    error "invalid CPU_CORES: $CPU_CORES (use a number of cores, or max)"
    exit 15
fi
if [ "$CPU_CORES" -gt "$CORES" ]; then
    warn "CPU_CORES=$CPU_CORES exceeds the $CORES cores of this machine: limited to $CORES"
    CPU_CORES="$CORES"
fi

# No O_DIRECT on these filesystems: disk.sh then keeps threads + writeback.
FS=$(stat -f -c %T "$STORAGE")
if [[ "${FS,,}" == "ecryptfs" || "${FS,,}" == "tmpfs" ]]; then
    DISK_IO="threads"
    DISK_CACHE="writeback"
fi

# Memory: RAM_SIZE plus a 500 MB margin must fit in the available memory (MemAvailable).
RAM_SPARE=500000000
RAM_SIZE="${RAM_SIZE// /}"
[[ "$RAM_SIZE" =~ ^[0-9]+$ ]] && RAM_SIZE="${RAM_SIZE}G"
RAM_SIZE=$(echo "${RAM_SIZE^^}" | sed 's/MB/M/g;s/GB/G/g;s/TB/T/g')
if ! RAM_WANTED=$(numfmt --from=iec "$RAM_SIZE" 2>/dev/null); then
    error "invalid RAM_SIZE: $RAM_SIZE (use a size like 512M or 2G)"
    exit 16
fi
# From 7.63 (qemus/qemu v7.45 and v7.48 src/memory.sh:68-83,128-156) a RAM_SIZE that does not
# fit is not refused: it becomes "max", the available memory less 1.5 GB (less 500 MB when that
# leaves under 3 GB; half of it below 1 GB), with a warning.
checkMemory() {
    local avail wanted
    [[ "$RAM_CHECK" == [Nn]* ]] && return 0
    avail=$(awk '/^MemAvailable:/ { print $2 * 1024 }' /proc/meminfo)
    if (( RAM_WANTED + RAM_SPARE > avail )); then
        if atLeast 7.63; then
            if (( avail < RAM_SPARE * 2 )); then
                wanted=$((avail / 2))
            else
                wanted=$((avail - RAM_SPARE * 3))
                (( wanted < RAM_SPARE * 6 )) && wanted=$((avail - RAM_SPARE))
            fi
            warn "Your configured RAM_SIZE of $RAM_SIZE is too high for the $((avail / 1048576)) MB of free memory available, it will automatically be adjusted to a lower amount."
            RAM_SIZE="$((wanted / 1048577))M"
            RAM_WANTED=$(numfmt --from=iec "$RAM_SIZE")
            return 0
        fi
        error "RAM_SIZE=$RAM_SIZE is too high for the $((avail / 1048576)) MB of memory available: set a lower RAM_SIZE"
        exit 17
    fi
    return 0
}
checkMemory

# html MESSAGE: the wait page's text (nginx serves $PAGE while it runs).
html() {
    local page
    page=$(<"$TEMPLATE")
    page="${page/@TITLE@/<title>Virtual DSM</title>}"
    page="${page/@MESSAGE@/$1}"
    echo "$page" > "$PAGE.tmp" && mv -f "$PAGE.tmp" "$PAGE"
}

html "Starting Virtual DSM for Docker..."
if [[ "$WEB" != [Nn]* ]]; then
    mkdir -p /etc/nginx/sites-enabled
    cp /etc/nginx/default.conf /etc/nginx/sites-enabled/web.conf
    nginx -e stderr
fi
return 0
