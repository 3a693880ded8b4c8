#!/usr/bin/env bash
# Accelerator probe: boot the guest kernel under KVM with `vdsm.probe=1`; the guest's /init
# prints VDSM-PROBE-OK on the serial console and powers off. The caller enforces the timeout
# (a KVM emulation failure leaves QEMU paused rather than exiting).
set -Eeuo pipefail
exec qemu-system-x86_64 -nodefaults -no-user-config -display none -vga none -no-reboot \
    -machine q35 -m 256M -enable-kvm -cpu host \
    -kernel /sim/vmlinuz -initrd /sim/initrd.img \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 vdsm.probe=1" \
    -serial stdio "$@"
