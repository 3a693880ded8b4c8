#!/usr/bin/env bash
# First start ("install"): create the DSM boot and system disks and dsm.ver.
# Disk names follow vdsm/virtual-dsm v7.41 src/install.sh: a PAT mounted at /boot.pat (or a
# boot.pat in $STORAGE) makes them DSM_VirtualDSM.*; with URL, the PAT's file name; otherwise
# the name dsm.ver records, or that of the PAT 7.41 downloads by default (DSM 7.2.2-72806,
# the release the simulator imitates). Install is skipped when both disks exist and are
# non-empty. The simulator reads no PAT: its disks are blank, the guest is in the initramfs.
set -Eeuo pipefail

: "${URL:=}"
# Seconds the install takes (a simulator knob, so tests can watch the wait page).
: "${SIM_INSTALL_SECONDS:=0}"

DEFAULT_BASE="DSM_VirtualDSM_72806"
BOOT_SIZE=64M
# 7.41 refuses to install with less than 14 GB free in $STORAGE (exit 94), and preallocates a
# 10 GiB system image (exit 97 when it does not fit, 98 when it cannot be made). The twin does
# the same checks with the same names, sized for a simulator (both can be set in the
# environment): the guest lives in the initramfs and never fills these disks.
: "${MIN_SPACE:=1073741824}"
: "${SYSTEM_SIZE:=268435456}"
ROOT_SPACE=536870912

freeBytes() { df --output=avail -B 1 "$1" | tail -n 1; }

patName() {  # file name of a PAT URL without .pat, reduced to safe characters
    local name="${1%%\?*}"
    name="${name##*/}"
    name="${name%.pat}"
    echo "$name" | sed -e 's/[^A-Za-z0-9._-]/_/g'
}

BASE=""
[ -f "$STORAGE/dsm.ver" ] && BASE=$(tr -cd '[:print:]' < "$STORAGE/dsm.ver")
[ -z "$BASE" ] && BASE="$DEFAULT_BASE"

PAT_FILE=""
for candidate in /boot.pat "$STORAGE/boot.pat"; do
    if [ -f "$candidate" ] && [ -s "$candidate" ]; then
        PAT_FILE="$candidate"
        break
    fi
done
if [ -n "$PAT_FILE" ]; then
    BASE="DSM_VirtualDSM"
elif [ -n "$URL" ] && [ ! -s "$STORAGE/$BASE.system.img" ]; then
    BASE=$(patName "$URL")
fi

BOOT="$STORAGE/$BASE.boot.img"
SYSTEM="$STORAGE/$BASE.system.img"

installDisks() {
    html "Please wait while Virtual DSM is being installed..."
    if [ -n "$PAT_FILE" ]; then
        info "Install: using the installation image $PAT_FILE"
    else
        info "Install: installing the DSM simulator as $BASE"
    fi
    rm -f "$BOOT" "$SYSTEM"
    local space
    space=$(freeBytes /)
    if ((ROOT_SPACE > space)); then
        error "not enough free space inside the container: $((space / 1048576)) MB available, at least 500 MB needed"
        exit 96
    fi
    space=$(freeBytes "$STORAGE")
    if ((MIN_SPACE > space)); then
        error "not enough free space for installation in $STORAGE: $((space / 1048576)) MB available, at least $((MIN_SPACE / 1048576)) MB needed"
        exit 94
    fi
    if [[ "$SIM_INSTALL_SECONDS" != "0" ]]; then
        sleep "$SIM_INSTALL_SECONDS"
    fi
    space=$(freeBytes "$STORAGE")
    if ((SYSTEM_SIZE > space)); then
        error "not enough free space in $STORAGE to create a $((SYSTEM_SIZE / 1048576)) MB system disk: $((space / 1048576)) MB available"
        exit 97
    fi
    # The system image is preallocated (fallocate, else a plain length), the boot image is the
    # sparse file a PAT's boot.img becomes, as in 7.41.
    if ! fallocate -l "$SYSTEM_SIZE" "$SYSTEM" 2>/dev/null && ! truncate -s "$SYSTEM_SIZE" "$SYSTEM"; then
        rm -f "$SYSTEM"
        error "could not allocate $SYSTEM for the system disk"
        exit 98
    fi
    truncate -s "$BOOT_SIZE" "$BOOT"
    echo "$BASE" > "$STORAGE/dsm.ver"
    html "Booting DSM instance..."
}

if [[ ! -s "$BOOT" || ! -s "$SYSTEM" ]]; then
    installDisks
fi
return 0
