#!/usr/bin/env bash
# Accelerator and CPU.
set -Eeuo pipefail

if [[ "${KVM^^}" == "N" || "${KVM^^}" == "NO" ]]; then
    ACCEL_OPTS="-accel tcg"
    info "KVM=N: software emulation (TCG)"
else
    ACCEL_OPTS="-enable-kvm"
fi
CPU_OPTS="-cpu $CPU_MODEL -smp $CPU_CORES"
return 0
