#!/usr/bin/env bash
# Accelerator and CPU, as vdsm/virtual-dsm v7.41 src/proc.sh decides them (our own code):
# - KVM (default): /dev/kvm must exist, be writable and the CPU must offer vmx/svm, else the
#   container exits 88 (unless DEBUG). Flags kvm=on,l3-cache=on,+hypervisor; without SSE4.2
#   on the host the model falls back to qemu64 and +ssse3,+sse4.1,+sse4.2 are emulated;
#   without CPU_MODEL it is host,migratable=no; +invtsc where the host scales the TSC. The
#   machine gets ",accel=kvm -enable-kvm -global kvm-pit.lost_tick_policy=discard".
# - KVM=N: TCG ("-accel tcg,thread=multi" after the machine), flags
#   l3-cache=on,+hypervisor,+ssse3,+sse4.1,+sse4.2, model max,migratable=no without CPU_MODEL.
# - "-cpu host,FLAGS" in ARGUMENTS moves FLAGS into CPU_FLAGS (a plain "-cpu host" is dropped);
#   CPU_FLAGS is appended after the flags above.
set -Eeuo pipefail

: "${KVM:=Y}"
: "${CPU_FLAGS:=}"
: "${CPU_MODEL:=}"

flags=$(sed -ne '/^flags/s/^.*: //p' /proc/cpuinfo | head -n 1)

if [[ "$KVM" != [Nn]* ]]; then
    KVM_ERR=""
    if [ ! -e /dev/kvm ]; then
        KVM_ERR="(/dev/kvm is missing)"
    elif ! sh -c 'echo -n > /dev/kvm' 2>/dev/null; then
        KVM_ERR="(/dev/kvm is unwriteable)"
    elif ! grep -qw "vmx\|svm" <<< "$flags"; then
        KVM_ERR="(not enabled in BIOS)"
    fi
    if [ -n "$KVM_ERR" ]; then
        KVM="N"
        error "KVM acceleration is not available $KVM_ERR: run with --device /dev/kvm, or set KVM=N for software emulation (about 10x slower)"
        [[ "$DEBUG" != [Yy1]* ]] && exit 88
    fi
fi

if [[ "$KVM" != [Nn]* ]]; then
    CPU_FEATURES="kvm=on,l3-cache=on,+hypervisor"
    KVM_OPTS=",accel=kvm -enable-kvm -global kvm-pit.lost_tick_policy=discard"
    if ! grep -qw "sse4_2" <<< "$flags"; then
        info "the CPU lacks SSE4.2, which DSM needs: it will be emulated"
        [ -z "$CPU_MODEL" ] && CPU_MODEL="qemu64"
        CPU_FEATURES+=",+ssse3,+sse4.1,+sse4.2"
    fi
    if [ -z "$CPU_MODEL" ]; then
        CPU_MODEL="host"
        CPU_FEATURES+=",migratable=no"
    fi
    if grep -qw "svm" <<< "$flags"; then
        grep -qw "tsc_scale" <<< "$flags" && CPU_FEATURES+=",+invtsc"
    else
        vmx=$(sed -ne '/^vmx flags/s/^.*: //p' /proc/cpuinfo | head -n 1)
        grep -qw "tsc_scaling" <<< "$vmx" && CPU_FEATURES+=",+invtsc"
    fi
else
    warn "KVM acceleration is disabled (KVM=N): software emulation (TCG), about 10 times slower"
    KVM_OPTS=" -accel tcg,thread=multi"
    CPU_FEATURES="l3-cache=on,+hypervisor"
    if [ -z "$CPU_MODEL" ]; then
        CPU_MODEL="max"
        CPU_FEATURES+=",migratable=no"
    fi
    # from 7.63 TCG emulates no SSE flags: "$CPU_MODEL,l3-cache=on,+hypervisor" (qemus/qemu v7.48
    # src/proc.sh:182-233; the KVM flags above stay 7.41's in both twins)
    atLeast 7.63 || CPU_FEATURES+=",+ssse3,+sse4.1,+sse4.2"
fi

if [[ "$ARGUMENTS" == *"-cpu host,"* ]]; then
    args="$ARGUMENTS "
    prefix="${args/-cpu host,*/}"
    suffix="${args/*-cpu host,/}"
    param="${suffix%% *}"
    suffix="${suffix#* }"
    args="$prefix$suffix"
    ARGUMENTS="${args::-1}"
    CPU_FLAGS="${CPU_FLAGS:+$CPU_FLAGS,}$param"
elif [[ "$ARGUMENTS" == *"-cpu host"* ]]; then
    ARGUMENTS="${ARGUMENTS//-cpu host/}"
fi

CPU_FLAGS="$CPU_MODEL,$CPU_FEATURES${CPU_FLAGS:+,$CPU_FLAGS}"
return 0
