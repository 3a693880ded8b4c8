#!/usr/bin/env bash
# Accelerator and CPU. Without usable /dev/kvm and without KVM=N the container exits 88
# (vdsm/virtual-dsm v7.41 src/proc.sh).
set -Eeuo pipefail

if [[ "$KVM" == [Nn]* ]]; then
    ACCEL_OPTS="-accel tcg"
    warn "KVM acceleration is disabled (KVM=N): software emulation (TCG), about 10 times slower"
else
    if [ ! -e /dev/kvm ]; then
        error "KVM acceleration is not available (no /dev/kvm): run with --device /dev/kvm, or set KVM=N for software emulation (about 10x slower)"
        exit 88
    fi
    if ! sh -c 'echo -n > /dev/kvm' 2>/dev/null; then
        error "no permission to use /dev/kvm: run with --device /dev/kvm, or set KVM=N"
        exit 88
    fi
    ACCEL_OPTS="-enable-kvm"
fi
CPU_OPTS="-cpu $CPU_MODEL -smp $CPU_CORES"
return 0
