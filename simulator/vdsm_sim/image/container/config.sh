#!/usr/bin/env bash
# Assemble the QEMU command line in QEMU_ARGS, in the order of vdsm/virtual-dsm v7.41
# src/config.sh: machine, display, monitor, serial, network, disks, devices (a virtio-balloon
# among them), and ARGUMENTS last (so `-loadvm NAME` goes there). Everything that shapes the
# virtual hardware is fixed here, so a snapshot taken in one container loads in another.
set -Eeuo pipefail

# SIM_* knobs go to the guest kernel command line as sim.NAME=VALUE. Values are
# percent-encoded (space, %, quotes, backslash and non-printables) and decoded by the guest's
# /init, because the kernel command line splits on spaces. Values must not contain newlines.
# The guest reads them once at boot: a container restored with -loadvm keeps the knobs of the
# container that took the snapshot. SIM_INSTALL_SECONDS is the container's own (install.sh).
simKnobs() {
    local name value out="" i c hex LC_ALL=C
    while IFS='=' read -r name value; do
        [[ "$name" =~ ^SIM_[A-Z0-9_]+$ ]] || continue
        [ "$name" = SIM_INSTALL_SECONDS ] && continue
        local enc=""
        for ((i = 0; i < ${#value}; i++)); do
            c=${value:i:1}
            if [[ "$c" =~ [-A-Za-z0-9._,:/+=@] ]]; then
                enc+=$c
            else
                printf -v hex '%%%02X' "'$c"
                enc+=$hex
            fi
        done
        out+=" sim.$name=$enc"
    done < <(env | grep -E '^SIM_[A-Z0-9_]+=' | sort)
    echo "$out"
}

KERNEL_APPEND="console=ttyS0 quiet loglevel=3 panic=-1$(simKnobs)"

QEMU_ARGS=(
    -nodefaults -no-user-config
    -kernel /sim/vmlinuz -initrd /sim/initrd.img -append "$KERNEL_APPEND"
)
set -f  # the option strings below are split on spaces like upstream, never globbed
# shellcheck disable=SC2206
QEMU_ARGS+=($ACCEL_OPTS $CPU_OPTS -m "$RAM_SIZE")
QEMU_ARGS+=(-machine "type=$MACHINE,smm=off,usb=off,vmport=off,dump-guest-core=off")
QEMU_ARGS+=(-display none -vga none)
QEMU_ARGS+=(
    -pidfile "$QEMU_PID" -name "VirtualDSM-SIM,process=qemu-vdsm-sim"
    -monitor "unix:$PRIVATE_MONITOR,server=on,wait=off" -daemonize -no-reboot
)
# shellcheck disable=SC2206
QEMU_ARGS+=($SERIAL_OPTS $NET_OPTS $DISK_OPTS $DATA_DISK_OPTS)
QEMU_ARGS+=(
    -device virtio-balloon-pci,id=balloon0,bus=pcie.0,addr=0x4
    -object rng-random,id=objrng0,filename=/dev/urandom
    -device virtio-rng-pci,rng=objrng0,id=rng0,bus=pcie.0,addr=0x1c
)
[ -n "$QMP" ] && QEMU_ARGS+=(-qmp "$QMP")
[ -n "$MONITOR" ] && QEMU_ARGS+=(-monitor "$MONITOR")
# shellcheck disable=SC2206
[ -n "$ARGUMENTS" ] && QEMU_ARGS+=($ARGUMENTS)
set +f

# The memory check again, as the very last step (RAM may have gone while installing).
checkMemory
return 0
