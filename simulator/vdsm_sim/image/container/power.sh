#!/usr/bin/env bash
# Stopping, as vdsm/virtual-dsm v7.41 src/power.sh does it (our own code): QEMU daemonizes
# with a pid file, its log in qemu.log and an HMP monitor on telnet localhost:7100. SIGTERM
# (docker stop), SIGHUP, SIGINT, SIGABRT and SIGQUIT ask the guest to shut down through the
# host helper (GET 127.0.0.1:2210/read?command=6&timeout=API_TIMEOUT); when it does not
# confirm, QEMU gets SIGTERM. Then QEMU is given QEMU_TIMEOUT seconds to exit. Both timeouts
# are 50 s, doubled under TCG (KVM=N). A docker stop shorter than that kills the container.
set -Eeuo pipefail

API_CMD=6
API_HOST="127.0.0.1:2210"
: "${API_TIMEOUT:=50}"
QEMU_PORT=7100
: "${QEMU_TIMEOUT:=50}"

if [[ "$KVM" == [Nn]* ]]; then
    API_TIMEOUT=$((API_TIMEOUT * 2))
    QEMU_TIMEOUT=$((QEMU_TIMEOUT * 2))
fi

touch "$QEMU_LOG"

isAlive() { kill -0 "$1" 2>/dev/null; }

finish() {
    local pid reason=$1
    touch "$QEMU_END"
    if [ -s "$QEMU_PID" ]; then
        pid=$(<"$QEMU_PID")
        if isAlive "$pid"; then
            error "Forcefully terminating QEMU process, reason: $reason..."
            kill -15 "$pid" 2>/dev/null || true
            while isAlive "$pid"; do
                sleep 0.2
                [ ! -s "$QEMU_PID" ] && break
            done
        fi
    fi
    [ -n "${HOST_HELPER_PID:-}" ] && kill "$HOST_HELPER_PID" 2>/dev/null
    info "Shutdown completed!"
    exit "$reason"
}

_graceful_shutdown() {
    local code=$? pid response cnt=0
    set +e
    if [ -f "$QEMU_END" ]; then
        info "Received $1 signal while already shutting down..."
        return
    fi
    touch "$QEMU_END"
    info "Received $1 signal, sending shutdown command..."
    if [ ! -s "$QEMU_PID" ]; then
        error "QEMU PID file does not exist?"
        finish "$code"
    fi
    pid=$(<"$QEMU_PID")
    if ! isAlive "$pid"; then
        error "QEMU process does not exist?"
        finish "$code"
    fi
    response=$(curl -sk -m "$((API_TIMEOUT + 2))" -S \
        "http://$API_HOST/read?command=$API_CMD&timeout=$API_TIMEOUT" 2>&1)
    if [[ "$response" =~ "\"success\"" ]]; then
        info "Virtual DSM is now ready to shutdown..."
    else
        response="${response#*message\"\: \"}"
        error "Forcefully terminating because of: ${response%%\"*}"
        kill -15 "$pid" 2>/dev/null
    fi
    while [ "$cnt" -lt "$QEMU_TIMEOUT" ]; do
        ! isAlive "$pid" && break
        sleep 1
        cnt=$((cnt + 1))
        [ ! -s "$QEMU_PID" ] && break
    done
    [ "$cnt" -ge "$QEMU_TIMEOUT" ] && error "Shutdown timeout reached, aborting..."
    finish "$code"
}

MON_OPTS="-pidfile $QEMU_PID -name $PROCESS,process=$PROCESS,debug-threads=on"
if atLeast 7.63; then
    # QEMU in the foreground; QMP and a monitor only where QMP / MONITOR ask for them (v7.65
    # src/config.sh:5-7,37-38, which replaces qemus/qemu's); the name is APP's with dashes (:41-42)
    MON_OPTS="-pidfile $QEMU_PID -name ${APP// /-},process=$PROCESS,debug-threads=on"
    [ -n "$QMP" ] && MON_OPTS+=" -qmp $QMP"
    [ -n "$MONITOR" ] && MON_OPTS+=" -monitor $MONITOR"
else
    MON_OPTS+=" -monitor telnet:localhost:$QEMU_PORT,server,nowait,nodelay -daemonize -D $QEMU_LOG"
fi

for sig in SIGTERM SIGHUP SIGINT SIGABRT SIGQUIT; do
    # shellcheck disable=SC2064
    trap "_graceful_shutdown $sig" "$sig"
done
return 0
