#!/usr/bin/env bash
# Entry point of the DSM simulator container (run by `tini -s`).
#
# The layout of vdsm/virtual-dsm v7.41 (src/entry.sh): small scripts sourced in the same order
# set up /storage, the disks, the network and the QEMU command line; QEMU starts daemonized,
# and if it fails to start the container exits 15 with QEMU's error on stderr. A stop signal
# asks the guest to shut down (power.sh); the container exits when QEMU is gone.
set -Eeuo pipefail

cd /run
. /run/reset.sh     # defaults, logging, memory check, runtime files, wait page
. /run/install.sh   # first start: boot and system disks, dsm.ver
. /run/disk.sh      # boot, system and data disks (the build base patches this file)
. /run/display.sh   # no display
[ -f /run/prepare.sh ] && . /run/prepare.sh  # from 7.63 on: boot and system disks (patched)
. /run/network.sh   # NAT (or user-mode) networking; stops the wait page
. /run/proc.sh      # accelerator and CPU
. /run/serial.sh    # host helper, virtio-serial channel, console
. /run/power.sh     # monitor, pid file, graceful shutdown on stop signals
. /run/config.sh    # the QEMU command line (QEMU_ARGS)

version=$(head -n 1 /run/qemu-version | sed 's/.*version \([^ ]*\).*/\1/')
info "Booting $APP (simulator of virtual-dsm $UPSTREAM) using QEMU v$version: ${QEMU_ARGS[*]}"
rc=0
if atLeast 7.63; then
    # From 7.63 QEMU runs in the foreground (v7.63 src/entry.sh:50-63): the container ends
    # with QEMU's own exit code, also when it fails to start (an unknown -loadvm snapshot).
    qemu-system-x86_64 "${QEMU_ARGS[@]}" 2> >(tee -a "$QEMU_LOG" >&2) &
    pid=$!
    wait "$pid" || rc=$?
    [ -f "$QEMU_END" ] && exit "$rc"
    touch "$QEMU_END"
    kill "$HOST_HELPER_PID" 2>/dev/null || true
    [ "$rc" -ne 0 ] && error "QEMU exited with code $rc"
    exit "$rc"
fi
qemu-system-x86_64 "${QEMU_ARGS[@]}" >"$QEMU_OUT" 2>"$QEMU_LOG" || rc=$?
if [ "$rc" -ne 0 ]; then
    error "$(cat "$QEMU_LOG")"
    error "QEMU failed to start (exit code $rc)"
    touch "$QEMU_END"
    kill "$HOST_HELPER_PID" 2>/dev/null || true
    exit 15
fi
# The guest console: the pty QEMU named on its stdout, copied into the container log.
term=$(sed -n 's/.*char device redirected to \(\/dev\/pts\/[0-9]*\).*/\1/p' "$QEMU_OUT" | head -n 1)
if [ -c "$term" ]; then
    cat "$term" 2>/dev/null &
else
    warn "QEMU named no console pty: the guest console is not in this log"
fi
tail -n +1 -F "$QEMU_LOG" 2>/dev/null >&2 &

pid=$(cat "$QEMU_PID")
# QEMU is not this shell's child (it daemonized; tini reaps it): poll until it is gone. The
# wait lets the stop-signal traps of power.sh run.
while kill -0 "$pid" 2>/dev/null; do
    sleep 0.5 &
    wait $! || true
done
[ ! -f "$QEMU_END" ] && finish 0
# a stop signal is being handled: its handler exits
while :; do
    sleep 0.5 &
    wait $! || true
done
