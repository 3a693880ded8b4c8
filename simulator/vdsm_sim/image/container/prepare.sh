#!/usr/bin/env bash
# Attach the DSM boot and system disks. They are raw, as on vdsm/virtual-dsm; the project's
# build base patches the two createDevice lines below to "qcow2" the same way for both images.
set -Eeuo pipefail

addSystemDisks() {
    local boot="$STORAGE/$BASE.boot.img"
    local system="$STORAGE/$BASE.system.img"

    DISK_OPTS+=$(createDevice "$boot" "$DISK_TYPE" "1" "0xa" "raw" "$DISK_IO" "$DISK_CACHE" "" "")
    DISK_OPTS+=$(createDevice "$system" "$DISK_TYPE" "2" "0xb" "raw" "$DISK_IO" "$DISK_CACHE" "" "")
}

addSystemDisks
return 0
