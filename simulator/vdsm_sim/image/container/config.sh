#!/usr/bin/env bash
# Assemble the QEMU command line in QEMU_ARGS as vdsm/virtual-dsm v7.41 src/config.sh does:
# defaults, CPU and topology (-smp N,sockets=1,dies=1,cores=N,threads=1), memory, the q35
# machine with the accelerator, display, monitor, serial, network, disks, devices (a
# virtio-balloon among them), and ARGUMENTS last (so `-loadvm NAME` and `-qmp ...` go there).
# Like 7.41 it reads no MACHINE, QMP or MONITOR. Where the twin must differ: it boots its own
# kernel and initramfs (-kernel/-initrd/-append, -no-user-config) instead of DSM's boot disk
# (tests/sim/test_cmdline.py names each difference).
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
    -nodefaults -boot strict=on -no-user-config
    -kernel /sim/vmlinuz -initrd /sim/initrd.img -append "$KERNEL_APPEND"
)
# from 7.63 the last memory check comes before -m is set (v7.65 src/config.sh:104-106)
atLeast 7.63 && checkMemory
RAM_OPTS=$(echo "-m ${RAM_SIZE^^}" | sed 's/MB/M/g;s/GB/G/g;s/TB/T/g')
CPU_OPTS="-cpu $CPU_FLAGS -smp $CPU_CORES,sockets=1,dies=1,cores=$CPU_CORES,threads=1"
MAC_OPTS="-machine type=q35,smm=off,usb=off,vmport=off,dump-guest-core=off,hpet=off$KVM_OPTS"
# from 7.63 MACHINE names the machine type (v7.65 src/config.sh:55; q35 by default, qemus/qemu
# v7.48 src/init.sh:16)
atLeast 7.63 && MAC_OPTS="${MAC_OPTS/type=q35/type=$MACHINE}"
DEV_OPTS="-device virtio-balloon-pci,id=balloon0,bus=pcie.0,addr=0x4"
DEV_OPTS+=" -object rng-random,id=objrng0,filename=/dev/urandom"
DEV_OPTS+=" -device virtio-rng-pci,rng=objrng0,id=rng0,bus=pcie.0,addr=0x1c"
set -f  # the option strings below are split on spaces like upstream, never globbed
# shellcheck disable=SC2206
QEMU_ARGS+=($CPU_OPTS $RAM_OPTS $MAC_OPTS $DISPLAY_OPTS $MON_OPTS $SERIAL_OPTS $NET_OPTS $DISK_OPTS $DEV_OPTS $ARGUMENTS)
set +f

# The memory check again, as the very last step (RAM may have gone while installing).
atLeast 7.63 || checkMemory
if [[ "$DEBUG" == [Yy1]* ]]; then
    printf "Arguments:\n\n%s\n\n" "${QEMU_ARGS[*]}"
fi
return 0
