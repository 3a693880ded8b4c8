#!/usr/bin/env bash
# The disks, laid out as vdsm/virtual-dsm v7.41 src/disk.sh lays them out (our own code):
# - DISK_TYPE (default scsi): each disk on its own virtio-scsi controller served by the
#   iothread io2 (`-object iothread,id=io2`), or blk (virtio-blk, same iothread), sata, nvme,
#   usb, auto, none; drive ids data1 (boot), data2 (system), data3 (data disk), bootindex =
#   index, at the fixed PCI addresses 0xa, 0xb, 0xc so a snapshot loads in another container.
# - DISK_CACHE=none + DISK_IO=native (O_DIRECT), except on tmpfs/ecryptfs (reset.sh), where
#   7.41 keeps threads + writeback; DISK_DISCARD=on, detect-zeroes=on.
# - the boot and system disks are attached raw by the two createDevice lines near the end of
#   this file (the lines the project's build base patches to qcow2, as on real 7.41); they
#   must exist (exit 81, 82).
# - the data disk data.img (DISK_FMT=raw) or data.qcow2, DISK_SIZE, growable unless
#   ALLOCATE=Y (then preallocated after a free-space check, exit 76). 7.41 refuses a data disk
#   under 6 GB (exit 73); the twin takes that minimum from DISK_MINIMUM (the name later
#   releases give it) so a CI machine can run 2 GB disks.
set -Eeuo pipefail

: "${DISK_IO:=native}"
: "${DISK_FMT:=raw}"
: "${DISK_TYPE:=}"
: "${DISK_FLAGS:=}"
: "${DISK_CACHE:=none}"
: "${DISK_DISCARD:=on}"
: "${DISK_ROTATION:=1}"
: "${DISK_MINIMUM:=1G}"

BOOT="$STORAGE/$BASE.boot.img"
SYSTEM="$STORAGE/$BASE.system.img"

[ ! -s "$BOOT" ] && error "Virtual DSM boot-image does not exist ($BOOT)" && exit 81
[ ! -s "$SYSTEM" ] && error "Virtual DSM system-image does not exist ($SYSTEM)" && exit 82

# createDevice FILE TYPE INDEX ADDRESS FORMAT IO CACHE SERIAL SECTORS: the QEMU options of one
# disk (the argument order of 7.41's createDevice, which the build base's patch relies on).
createDevice() {
    local file=$1 type=$2 index=$3 address=$4 format=$5 io=$6 cache=$7 serial=${8:-} sectors=${9:-}
    local id="data$index" boot=""
    [ -n "$index" ] && boot=",bootindex=$index"
    local drive=" -drive file=$file,id=$id,format=$format,cache=$cache,aio=$io,discard=$DISK_DISCARD,detect-zeroes=on"

    case "${type,,}" in
        none) ;;
        auto) echo "$drive" ;;
        usb) echo "$drive,if=none -device usb-storage,drive=$id$boot$serial$sectors" ;;
        nvme) echo "$drive,if=none -device nvme,drive=$id$boot,serial=deadbeaf$index$serial$sectors" ;;
        ide | sata)
            echo "$drive,if=none -device ich9-ahci,id=ahci$index,addr=$address" \
                "-device ide-hd,drive=$id,bus=ahci$index.0,rotation_rate=$DISK_ROTATION$boot$serial$sectors"
            ;;
        blk | virtio-blk)
            echo "$drive,if=none -device virtio-blk-pci,drive=$id,bus=pcie.0,addr=$address,iothread=io2$boot$serial$sectors"
            ;;
        scsi | virtio-scsi)
            echo "$drive,if=none -device virtio-scsi-pci,id=${id}b,bus=pcie.0,addr=$address,iothread=io2" \
                "-device scsi-hd,drive=$id,bus=${id}b.0,channel=0,scsi-id=0,lun=0,rotation_rate=$DISK_ROTATION$boot$serial$sectors"
            ;;
    esac
    return 0
}

addDataDisk() {
    local format="${DISK_FMT,,}" file size minimum space
    case "$format" in
        raw) file="$STORAGE/$DISK_NAME.img" ;;
        qcow2) file="$STORAGE/$DISK_NAME.qcow2" ;;
        *)
            error "Unrecognized disk format: $DISK_FMT (use raw or qcow2)"
            exit 78
            ;;
    esac
    size="${DISK_SIZE// /}"
    [ -z "${size//[0-9.]/}" ] && size="${size}G"
    size=$(echo "${size^^}" | sed 's/MB/M/g;s/GB/G/g;s/TB/T/g')
    if ! size=$(numfmt --from=iec "$size" 2>/dev/null); then
        error "Invalid value for DISK_SIZE: $DISK_SIZE (use a size like 2G)"
        exit 73
    fi
    minimum=$(numfmt --from=iec "${DISK_MINIMUM^^}")
    if ((size < minimum)); then
        error "Please increase DISK_SIZE to at least $DISK_MINIMUM."
        exit 73
    fi
    if [ ! -s "$file" ]; then
        rm -f "$file"
        if [[ "$ALLOCATE" != [Nn]* ]]; then
            space=$(df --output=avail -B 1 "$STORAGE" | tail -n 1)
            if ((size > space)); then
                error "Not enough free space to create a disk of $DISK_SIZE in $STORAGE, it has only $((space / 1048576)) MB available..."
                error "Please specify a smaller DISK_SIZE or disable preallocation by setting ALLOCATE=N."
                exit 76
            fi
        fi
        info "Creating a $DISK_SIZE $DISK_STYLE data disk image in $format format..."
        if [ "$format" = raw ]; then
            if [[ "$ALLOCATE" == [Nn]* ]]; then
                truncate -s "$size" "$file"
            else
                fallocate -l "$size" "$file" 2>/dev/null || truncate -s "$size" "$file"
            fi
        else
            local param="$DISK_ALLOC"
            [ -n "$DISK_FLAGS" ] && param+=",$DISK_FLAGS"
            if ! qemu-img create -q -f qcow2 -o "$param" -- "$file" "$size"; then
                rm -f "$file"
                error "Could not create a $format data disk image of $DISK_SIZE ($file)"
                exit 70
            fi
        fi
    fi
    DISK_OPTS+=$(createDevice "$file" "$DISK_TYPE" "3" "0xc" "$format" "$DISK_IO" "$DISK_CACHE" "" "")
}

[ -z "${DISK_OPTS:-}" ] && DISK_OPTS=""
[ -z "${DISK_TYPE:-}" ] && DISK_TYPE="scsi"
[ -z "${DISK_NAME:-}" ] && DISK_NAME="data"

case "${DISK_TYPE,,}" in
    ide | sata | nvme | usb | scsi | blk | auto | none) ;;
    *) error "Invalid DISK_TYPE specified, value \"$DISK_TYPE\" is not recognized!" && exit 80 ;;
esac

[ -z "$ALLOCATE" ] && ALLOCATE="N"
if [[ "$ALLOCATE" == [Nn]* ]]; then
    DISK_STYLE="growable"
    DISK_ALLOC="preallocation=off"
else
    DISK_STYLE="preallocated"
    DISK_ALLOC="preallocation=falloc"
fi

DISK_OPTS+=$(createDevice "$BOOT" "$DISK_TYPE" "1" "0xa" "raw" "$DISK_IO" "$DISK_CACHE" "" "")
DISK_OPTS+=$(createDevice "$SYSTEM" "$DISK_TYPE" "2" "0xb" "raw" "$DISK_IO" "$DISK_CACHE" "" "")

addDataDisk

DISK_OPTS+=" -object iothread,id=io2"
return 0
