#!/usr/bin/env bash
# Entry point of the DSM simulator container (run by `tini -s`).
#
# The contract of vdsm/virtual-dsm v7.41 (src/entry.sh): small scripts sourced in order set up
# /storage, the network and the QEMU command line; QEMU starts daemonized, and if it fails to
# start the container exits 15 with QEMU's error on stderr. SIGTERM asks QEMU to quit through a
# private monitor socket; the container exits when QEMU is gone.
set -Eeuo pipefail

cd /run
. /run/reset.sh     # defaults, memory check, runtime files, wait page
. /run/install.sh   # first start: boot and system disks, dsm.ver
. /run/disk.sh      # createDevice, data disk
. /run/prepare.sh   # attach boot and system disks
. /run/network.sh   # NAT (or user-mode) networking; stops the wait page
. /run/proc.sh      # accelerator and CPU
. /run/serial.sh    # host helper, virtio-serial channel, console
. /run/config.sh    # the QEMU command line (QEMU_ARGS)

finish() {
    touch "$QEMU_END"
    kill "$HOST_HELPER_PID" 2>/dev/null || true
    exit "$1"
}

stopQemu() {
    info "received a stop signal: asking QEMU to quit"
    touch "$QEMU_END"
    if [ -s "$QEMU_PID" ]; then
        python3 /run/hmp.py "$PRIVATE_MONITOR" quit >/dev/null 2>&1 \
            || kill -TERM "$(cat "$QEMU_PID")" 2>/dev/null || true
    fi
}
trap stopQemu TERM INT

# Guest console: QEMU writes it to a file, tail copies it into the container log.
tail -n +1 -F "$CONSOLE_LOG" 2>/dev/null &

version=$(head -n 1 /run/qemu-version | sed 's/.*version \([^ ]*\).*/\1/')
info "Booting Virtual DSM (simulator) using QEMU v$version: ${QEMU_ARGS[*]}"
rc=0
qemu-system-x86_64 "${QEMU_ARGS[@]}" >"$QEMU_OUT" 2>"$QEMU_LOG" || rc=$?
if [ "$rc" -ne 0 ]; then
    error "$(cat "$QEMU_LOG")"
    error "QEMU failed to start (exit code $rc)"
    finish 15
fi
tail -n +1 -F "$QEMU_LOG" 2>/dev/null >&2 &

pid=$(cat "$QEMU_PID")
# QEMU is not this shell's child (it daemonized; tini reaps it): poll until it is gone.
while kill -0 "$pid" 2>/dev/null; do
    sleep 0.5 &
    wait $! || true
done
info "QEMU exited"
finish 0
