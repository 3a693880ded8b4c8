#!/usr/bin/env bash
# Only in the twin of a release from 7.63 on (vdsm/virtual-dsm v7.63 and v7.65 src/prepare.sh:
# 15-16): the boot and system disks are attached here, raw, by the two lines the project's
# build base patches to qcow2 (base.patch_file: /run/prepare.sh). 7.41's twin has no such
# file: its disk.sh attaches them.
set -Eeuo pipefail

addSystemDisks() {
    local boot="$STORAGE/$BASE.boot.img"
    local system="$STORAGE/$BASE.system.img"

    DISK_OPTS+=$(createDevice "$boot" "$DISK_TYPE" "1" "0xa" "raw" "$DISK_IO" "$DISK_CACHE" "" "")
    DISK_OPTS+=$(createDevice "$system" "$DISK_TYPE" "2" "0xb" "raw" "$DISK_IO" "$DISK_CACHE" "" "")
}

addSystemDisks
return 0
