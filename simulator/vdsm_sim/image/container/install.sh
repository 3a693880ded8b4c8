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
SYSTEM_SIZE=256M
MIN_FREE_KB=$((1024 * 1024))

checkFreeSpace() {
    local free_kb
    free_kb=$(df -Pk "$STORAGE" | awk 'NR == 2 { print $4 }')
    if [ "$free_kb" -lt "$MIN_FREE_KB" ]; then
        error "not enough free space in $STORAGE: $((free_kb / 1024)) MB free, at least 1024 MB needed"
        exit 93
    fi
}

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
    checkFreeSpace
    if [[ "$SIM_INSTALL_SECONDS" != "0" ]]; then
        sleep "$SIM_INSTALL_SECONDS"
    fi
    rm -f "$BOOT" "$SYSTEM"
    # raw and sparse, like the disks vdsm/virtual-dsm extracts from a PAT
    truncate -s "$BOOT_SIZE" "$BOOT"
    truncate -s "$SYSTEM_SIZE" "$SYSTEM"
    echo "$BASE" > "$STORAGE/dsm.ver"
    html "Booting DSM instance..."
}

if [[ ! -s "$BOOT" || ! -s "$SYSTEM" ]]; then
    installDisks
fi
return 0
