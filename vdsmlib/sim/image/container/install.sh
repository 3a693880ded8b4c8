#!/usr/bin/env bash
# First start ("install"): create the DSM boot and system disks, dsm.ver and the MAC file.
# Install is done when both disks exist and are non-empty, as on vdsm/virtual-dsm.
set -Eeuo pipefail

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

installDisks() {
    local boot="$STORAGE/$BASE.boot.img"
    local system="$STORAGE/$BASE.system.img"

    if [ -s "$boot" ] && [ -s "$system" ]; then
        return 0
    fi
    info "installing the DSM simulator into $STORAGE"
    checkFreeSpace
    rm -f "$boot" "$system"
    # raw and sparse, like the disks vdsm/virtual-dsm extracts from a PAT
    truncate -s "$BOOT_SIZE" "$boot"
    truncate -s "$SYSTEM_SIZE" "$system"
    echo "$BASE" > "$STORAGE/dsm.ver"
}

installMac() {
    local file="$STORAGE/dsm.mac"
    if [ ! -s "$file" ]; then
        # Synology's OUI with the locally administered bit, as a stable per-install address
        printf '02:11:32:%02x:%02x:%02x\n' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)) > "$file"
    fi
    MAC=$(tr -d '[:space:]' < "$file")
}

installDisks
[ -s "$STORAGE/dsm.ver" ] || echo "$BASE" > "$STORAGE/dsm.ver"
installMac
return 0
