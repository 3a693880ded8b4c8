#!/usr/bin/env bash
# Entry point of the DSM simulator container (run by `tini -s`).
#
# The same contract as vdsm/virtual-dsm: small scripts sourced in order set up /storage and
# the QEMU command line, then QEMU runs in the foreground. SIGTERM asks QEMU to quit through a
# private monitor socket; the container exits with QEMU's exit code.
set -Eeuo pipefail

cd /run
. /run/reset.sh     # defaults, KVM check, runtime directories
. /run/install.sh   # first start: boot and system disks, dsm.ver, MAC
. /run/disk.sh      # createDevice, data disk
. /run/prepare.sh   # attach boot and system disks
. /run/network.sh   # user-mode networking with port forwards
. /run/proc.sh      # accelerator and CPU
. /run/config.sh    # the QEMU command line (QEMU_ARGS)

# Port 5000: "please wait" page until the guest answers, then a TCP proxy to it.
python3 /run/waitpage.py &

# Guest console: QEMU writes it to a file, tail copies it into the container log.
tail -n +1 -F "$CONSOLE_LOG" 2>/dev/null &

QEMU_PID=""
stopQemu() {
    info "received a stop signal: asking QEMU to quit"
    if [ -n "$QEMU_PID" ]; then
        python3 /run/hmp.py "$PRIVATE_MONITOR" quit >/dev/null 2>&1 || kill -TERM "$QEMU_PID" 2>/dev/null || true
    fi
}
trap stopQemu TERM INT

info "starting qemu-system-x86_64 ${QEMU_ARGS[*]}"
qemu-system-x86_64 "${QEMU_ARGS[@]}" &
QEMU_PID=$!

rc=0
while :; do
    # `wait` returns early when a trapped signal arrives; wait again until QEMU is gone.
    wait "$QEMU_PID" && rc=0 || rc=$?
    kill -0 "$QEMU_PID" 2>/dev/null || break
done
# One last reap so that rc is QEMU's own status, not that of an interrupted wait.
wait "$QEMU_PID" 2>/dev/null && rc=0 || { r=$?; [ "$r" -ne 127 ] && rc=$r; }

if [ "$rc" -ne 0 ]; then
    error "QEMU exited with code $rc (its error is above)"
else
    info "QEMU exited"
fi
exit "$rc"
