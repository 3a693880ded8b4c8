#!/usr/bin/env bash
# Healthy means DSM's Web API accepts a login of the configured admin (an HTTP 200 on port 5000
# proves nothing: the container answers it with a "please wait" page while the VM boots).
# Plain bash (/dev/tcp), so it needs nothing the base image may lack.
set -u
. /etc/vdsm-ci/health.conf  # HEALTH_USER, HEALTH_PASSWORD (URL-encoded)
# NAT mode (virtual-dsm's default): DSM is the guest on the container's bridge, and nothing
# answers on 127.0.0.1:5000; user-mode networking forwards 127.0.0.1:5000 to it.
# /run/shm/dsm.url is not used: it is absent after a -loadvm restore.
addr=127.0.0.1:5000
if [ -d /sys/class/net/dockerbridge ]; then addr=20.20.20.21:5000; fi
host=${addr%:*}; port=${addr##*:}
get() {
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" "$host" >&3
  timeout 8 cat <&3
  exec 3<&-
}
resp=$(get "/webapi/auth.cgi?api=SYNO.API.Auth&version=3&method=login&account=${HEALTH_USER}&passwd=${HEALTH_PASSWORD}&format=sid") || exit 1
case "$resp" in *'"success":true'*|*'"success": true'*) ;; *) echo "login failed: ${resp##*$'\r\n\r\n'}"; exit 1;; esac
sid=$(printf '%s' "$resp" | sed -n 's/.*"sid" *: *"\([^"]*\)".*/\1/p')
[ -n "$sid" ] && get "/webapi/entry.cgi?api=SYNO.API.Auth&version=1&method=logout&_sid=$sid" >/dev/null
exit 0
