#!/usr/bin/env bash
# Defaults, logging helpers, memory check, runtime files, the wait page (nginx).
# Follows vdsm/virtual-dsm v7.41 src/reset.sh: dsm.url and qemu.* are removed at every start,
# a RAM_SIZE larger than the available memory exits 17, nginx serves the wait page on 5000.
set -Eeuo pipefail

info() { echo "❯ $*"; }
warn() { echo "❯ Warning: $*" >&2; }
error() { echo "❯ ERROR: $*" >&2; }

: "${STORAGE:=/storage}"
: "${KVM:=Y}"
: "${RAM_SIZE:=512M}"
: "${RAM_CHECK:=Y}"
: "${CPU_CORES:=1}"
: "${CPU_MODEL:=qemu64}"
: "${MACHINE:=q35}"
: "${DISK_SIZE:=2G}"
: "${DISK_FMT:=raw}"
: "${DISK_TYPE:=blk}"
# Buffered I/O works on every filesystem (overlayfs of a flattened image included);
# aio=native would need O_DIRECT.
: "${DISK_IO:=threads}"
: "${DISK_CACHE:=writeback}"
: "${QMP:=}"
: "${MONITOR:=}"
: "${ARGUMENTS:=}"
: "${WEB:=Y}"

RUN_DIR=/run/shm
CONSOLE_LOG="$RUN_DIR/console.log"
PRIVATE_MONITOR="$RUN_DIR/monitor.sock"
QEMU_PID="$RUN_DIR/qemu.pid"
QEMU_LOG="$RUN_DIR/qemu.log"
QEMU_OUT="$RUN_DIR/qemu.out"
QEMU_END="$RUN_DIR/qemu.end"
PAGE="$RUN_DIR/index.html"
TEMPLATE=/var/www/index.html

mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR"/qemu.* "$RUN_DIR/dsm.url" "$PRIVATE_MONITOR" "$CONSOLE_LOG"
: > "$CONSOLE_LOG"

if [ ! -d "$STORAGE" ]; then
    mkdir -p "$STORAGE" || { error "cannot create the storage directory $STORAGE"; exit 13; }
fi
if [ ! -w "$STORAGE" ]; then
    error "the storage directory $STORAGE is not writable"
    exit 13
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
checkMemory() {
    local avail
    [[ "$RAM_CHECK" == [Nn]* ]] && return 0
    avail=$(awk '/^MemAvailable:/ { print $2 * 1024 }' /proc/meminfo)
    if (( RAM_WANTED + RAM_SPARE > avail )); then
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
