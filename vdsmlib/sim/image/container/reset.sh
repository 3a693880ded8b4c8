#!/usr/bin/env bash
# Defaults, logging helpers, KVM check, runtime directories.
set -Eeuo pipefail

info() { echo "❯ $*"; }
warn() { echo "❯ WARNING: $*" >&2; }
error() { echo "❯ ERROR: $*" >&2; }

: "${STORAGE:=/storage}"
: "${KVM:=Y}"
: "${RAM_SIZE:=512M}"
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

BASE="DSM_VirtualDSM_SIM"
RUN_DIR=/run/shm
CONSOLE_LOG="$RUN_DIR/console.log"
PRIVATE_MONITOR="$RUN_DIR/monitor.sock"

mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR/dsm.url" "$PRIVATE_MONITOR" "$CONSOLE_LOG"
: > "$CONSOLE_LOG"

if [[ "${KVM^^}" != "N" && "${KVM^^}" != "NO" ]]; then
    if [ ! -e /dev/kvm ]; then
        error "KVM acceleration is not available (no /dev/kvm): run with --device /dev/kvm, or set KVM=N for software emulation (about 10x slower)"
        exit 88
    fi
    if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
        error "no permission to use /dev/kvm: run with --device /dev/kvm (or --privileged), or set KVM=N"
        exit 88
    fi
fi

if [ ! -d "$STORAGE" ]; then
    mkdir -p "$STORAGE" || { error "cannot create the storage directory $STORAGE"; exit 70; }
fi
if [ ! -w "$STORAGE" ]; then
    error "the storage directory $STORAGE is not writable"
    exit 70
fi
return 0
