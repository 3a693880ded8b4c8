#!/usr/bin/env bash
# Healthy means DSM's Web API accepts a login of the configured admin (an HTTP 200 on port 5000
# proves nothing: the container answers it with a "please wait" page while the VM boots).
#
# Where DSM is, seen from inside the container:
# 1. /run/shm/dsm.url (ip:port) when virtual-dsm wrote it. It does so only when a booting guest
#    reports its address, so after a restore (`-incoming`: the guest does not boot) it may never
#    appear.
# 2. The guest's address (GUEST_ADDRESS, port 5000) when the container has a direct route to it:
#    virtual-dsm's NAT networking puts the guest on a bridge inside the container, and then
#    nothing answers on the container's own 127.0.0.1:5000.
# 3. 127.0.0.1:5000: QEMU user-mode networking (the fallback without tun/NET_ADMIN) forwards 5000
#    on every address of the container.
#
# Docker runs the check every second (HEALTHCHECK in Dockerfile.flatten), and until a login
# succeeded a run keeps trying (below), so that `healthy` follows the first possible login
# closely. A login on every run would load the guest for the container's life: once a login
# succeeded, a run only opens a TCP connection to DSM, and logs in again when the last login is
# HEALTH_RELOGIN seconds old (300 unless health.conf says otherwise). The state file that
# remembers the login names this container start (PID 1's start time), DSM's address and the
# configuration, so a restarted container logs in again.
# Plain bash (/dev/tcp, /proc/net/route) and coreutils, so it needs nothing the base may lack.
set -u
# HEALTH_USER, HEALTH_PASSWORD (URL-encoded), GUEST_ADDRESS, HEALTH_TIMEOUT (seconds one answer
# may take: params timeouts.health, times timeouts.tcg_factor for a TCG image). (Both paths can
# be moved by the environment, for tests.)
conf=${VDSM_CI_HEALTH_CONF:-/etc/vdsm-ci/health.conf}
. "$conf"
state=${VDSM_CI_HEALTH_STATE:-/run/vdsm-ci-health.ok}
relogin=${HEALTH_RELOGIN:-300}

# on_link IP: the container routes IP directly (no gateway) through one of its interfaces.
on_link() {
  local a b c d ip iface dest gw rest mask
  IFS=. read -r a b c d <<<"$1" || return 1
  # /proc/net/route holds addresses as little-endian hex
  ip=$((a | b << 8 | c << 16 | d << 24))
  while read -r iface dest gw _ _ _ _ mask rest; do
    [ "$iface" = Iface ] && continue
    [ "$gw" = 00000000 ] && [ "$mask" != 00000000 ] || continue
    if (((ip & 16#$mask) == 16#$dest)); then return 0; fi
  done </proc/net/route
  return 1
}

if [ -s "${VDSM_CI_DSM_URL:-/run/shm/dsm.url}" ]; then
  addr=$(cat "${VDSM_CI_DSM_URL:-/run/shm/dsm.url}")
elif [ -n "${GUEST_ADDRESS:-}" ] && on_link "$GUEST_ADDRESS"; then
  addr=$GUEST_ADDRESS:5000
else
  addr=127.0.0.1:5000
fi
host=${addr%:*}
port=${addr##*:}

# reachable SECONDS: DSM accepts a TCP connection within SECONDS
reachable() { timeout "$1" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null; }

# this container start, DSM's address and the configuration: what a remembered login is valid for
stat=$(</proc/1/stat)
read -r -a fields <<<"${stat##*) }"
key="${fields[19]} $addr $(cksum <"$conf")"
if [ -s "$state" ] && [ "$(<"$state")" = "$key" ] &&
  [ $(($(date +%s) - $(stat -c %Y "$state"))) -lt "$relogin" ]; then
  reachable 2 && exit 0
  rm -f "$state"
  echo "DSM at $addr accepts no connection"
  exit 1
fi

# get PATH: the raw HTTP answer; a guest that does not answer costs at most HEALTH_TIMEOUT s.
get() {
  timeout "${HEALTH_TIMEOUT:-8}" bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$2" "$0" >&3
    cat <&3' "$host" "$port" "$1"
}

# login: one admin login (and its logout); false with the reason in $why
login() {
  local resp sid
  # a guest that is not there yet (restoring) must not hold the run for a connect timeout
  reachable 0.3 || {
    why="no answer from DSM at $addr"
    return 1
  }
  resp=$(get "/webapi/auth.cgi?api=SYNO.API.Auth&version=3&method=login&account=${HEALTH_USER}&passwd=${HEALTH_PASSWORD}&format=sid") || {
    why="no answer from DSM at $addr"
    return 1
  }
  case "$resp" in
    *'"success":true'* | *'"success": true'*) ;;
    *)
      why="login at $addr failed: ${resp##*$'\r\n\r\n'}"
      return 1
      ;;
  esac
  sid=$(printf '%s' "$resp" | sed -n 's/.*"sid" *: *"\([^"]*\)".*/\1/p')
  [ -n "$sid" ] && get "/webapi/entry.cgi?api=SYNO.API.Auth&version=1&method=logout&_sid=$sid" >/dev/null
  return 0
}

# Until a login succeeded, a run keeps trying for HEALTH_WAIT seconds (10 unless health.conf
# says otherwise), every 0.1 s: Docker 20.10 starts a run only every --interval, and the
# container is `healthy` the moment a login works, not up to an interval later.
why=
deadline=$((SECONDS + ${HEALTH_WAIT:-10}))
until login; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "$why"
    exit 1
  fi
  sleep 0.1
done
printf '%s\n' "$key" >"$state.tmp" && mv -f "$state.tmp" "$state"
exit 0
