#!/usr/bin/env bash
# createDevice and the data disk.
set -Eeuo pipefail

# Boot and system disks (prepare.sh) come first on the command line, the data disk after them.
DISK_OPTS=""
DATA_DISK_OPTS=""

# createDevice FILE TYPE INDEX ADDRESS FORMAT IO CACHE SERIAL SECTORS
# Prints the QEMU options of one disk: a -drive of FORMAT and a virtio-blk device at a fixed
# PCI address, so that the device layout is identical on every start (loadvm needs that).
createDevice() {
    local file=$1 type=$2 index=$3 address=$4 format=$5 io=$6 cache=$7 serial=${8:-} sectors=${9:-}
    local id="disk$index"
    local drive="file=$file,if=none,id=$id,format=$format,cache=$cache,aio=$io,discard=unmap,detect-zeroes=on"
    local device="virtio-blk-pci,drive=$id,bus=pcie.0,addr=$address"

    [ -n "$serial" ] && device+=",serial=$serial"
    [ -n "$sectors" ] && device+=",logical_block_size=$sectors,physical_block_size=$sectors"
    case "${type,,}" in
        blk | virtio-blk) ;;
        *)
            error "DISK_TYPE=$type is not supported by the simulator (use blk)"
            exit 71
            ;;
    esac
    echo " -drive $drive -device $device"
}

addDataDisk() {
    local format="${DISK_FMT,,}" file
    case "$format" in
        raw) file="$STORAGE/data.img" ;;
        qcow2) file="$STORAGE/data.qcow2" ;;
        *)
            error "DISK_FMT=$DISK_FMT is not supported (use raw or qcow2)"
            exit 71
            ;;
    esac
    if [ ! -s "$file" ]; then
        info "creating the $DISK_SIZE data disk $file"
        checkFreeSpace
        if [ "$format" = raw ]; then
            truncate -s "$DISK_SIZE" "$file"
        else
            qemu-img create -q -f qcow2 "$file" "$DISK_SIZE"
        fi
    fi
    DATA_DISK_OPTS+=$(createDevice "$file" "$DISK_TYPE" "3" "0xc" "$format" "$DISK_IO" "$DISK_CACHE" "" "")
}

addDataDisk
return 0
