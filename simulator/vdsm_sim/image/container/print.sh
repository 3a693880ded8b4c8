#!/usr/bin/env bash
# Writes /run/shm/dsm.url (ip:port of DSM's web server) once the guest has reported its network
# settings, as vdsm/virtual-dsm v7.41 src/print.sh does: started by the host helper when the
# booting guest first reports, it polls http://127.0.0.1:2210/read?command=10.
set -Eeuo pipefail

[[ "${NETWORK:-Y}" == [Nn]* ]] && exit 0  # no network card, no address to name

file=/run/shm/dsm.url
shutdown=/run/shm/qemu.end
url="http://127.0.0.1:2210/read?command=10"

while [ ! -s "$file" ]; do
    [ -f "$shutdown" ] && exit 1
    if ! json=$(curl -m 20 -sf "$url"); then
        echo "❯ ERROR: cannot reach the host helper at $url" >&2
        sleep 1
        continue
    fi
    if [ "$(jq -r '.status' <<< "$json")" != success ]; then
        sleep 1
        continue
    fi
    port=$(jq -r '.data.data.dsm_setting.data.http_port' <<< "$json")
    ip=$(jq -r '.data.data.ip.data[] | select((.name == "eth0") and has("ip")).ip' <<< "$json")
    [ -z "$port" ] || [ "$port" = null ] && { sleep 1; continue; }
    [ -z "$ip" ] && ip="20.20.20.21"
    echo "$ip:$port" > "$file.tmp" && mv -f "$file.tmp" "$file"
done

location=$(<"$file")
address=$(cat /run/shm/qemu.ip 2>/dev/null || true)
echo "❯ -----------------------------------------------------------" >&2
echo "❯  You can now login to DSM at http://${address:-${location%:*}}:${location##*:}" >&2
echo "❯ -----------------------------------------------------------" >&2
exit 0
