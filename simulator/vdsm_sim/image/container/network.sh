#!/usr/bin/env bash
# Guest networking as vdsm/virtual-dsm v7.41 src/network.sh does it (our own code):
# - NETWORK unset/Y (NAT, the default): bridge `dockerbridge` 20.20.20.1/24 with a tap, dnsmasq
#   giving the guest 20.20.20.21 (infinite lease for the MAC in $STORAGE/dsm.mac), iptables
#   (legacy) DNAT of TCP and UDP that arrives on eth0 for the container's address to the guest,
#   except HOST_PORTS; MASQUERADE out. Needs --device /dev/net/tun --cap-add NET_ADMIN.
#   Nothing inside the container answers on 127.0.0.1:5000; inside it DSM is 20.20.20.21:5000.
# - NETWORK=user, or NAT impossible (no tun, no NET_ADMIN): QEMU user networking forwarding
#   only 22 and 5000 (plus USER_PORTS) to the guest, with a warning.
# - NETWORK=N: no network card.
# The wait page (nginx) is stopped here, before QEMU starts.
set -Eeuo pipefail

: "${MAC:=}"
: "${NETWORK:=Y}"
: "${USER_PORTS:=}"
: "${HOST_PORTS:=}"
: "${VM_NET_DEV:=}"
: "${VM_NET_TAP:=dsm}"
: "${VM_NET_MAC:=$MAC}"
: "${VM_NET_IP:=}"
: "${VM_NET_HOST:=VirtualDSM}"

# The guest's NAT address. 7.41: VM_NET_IP, else always 20.20.20.21. From 7.62 (qemus/qemu
# v7.48 src/network.sh:368-400, natGuestIP, used at :1820-1823 unless VM_NET_IP is set): derived
# from the container's own address, 172.<30..254>.<its third octet>.2, the first such /24 no
# route of the container uses (31 first when the container itself is in 172.30.x); a given
# VM_NET_IP keeps its last octet if it is 2..254, else .2. So a guest restored in a network with
# another subnet keeps an address the new bridge does not route, unless VM_NET_IP is pinned.
ipNumber() {
    local a b c d
    IFS=. read -r a b c d <<< "$1"
    echo $(((a << 24) | (b << 16) | (c << 8) | d))
}
subnetInUse() {  # subnetInUse A.B.C.0: does a route of the container overlap A.B.C.0/24?
    local want route len base mask
    want=$(ipNumber "$1")
    while read -r route; do
        [[ "$route" =~ ^([0-9.]+)/([0-9]+)$ ]] || continue
        base=$(ipNumber "${BASH_REMATCH[1]}")
        len=${BASH_REMATCH[2]}
        ((len < 24)) || len=24
        mask=$(((0xFFFFFFFF << (32 - len)) & 0xFFFFFFFF))
        (((want & mask) == (base & mask))) && return 0
    done < <(ip -4 route show | awk '{ print $1 }')
    return 1
}
natGuestIP() {
    local ip=$1 third second start=30
    third=$(cut -d. -f3 <<< "$ip")
    [[ "$ip" == 172.30.* ]] && start=31
    for ((second = start; second <= 254; second++)); do
        subnetInUse "172.$second.$third.0" && continue
        echo "172.$second.$third.2"
        return 0
    done
    return 1
}
guestIP() {
    local ip=$1 last="${1##*.}"
    if [[ ! "$last" =~ ^[0-9]+$ ]] || ((last < 2 || last > 254)); then
        ip="${ip%.*}.2"
    fi
    echo "$ip"
}
ADD_SETTING="add this setting to the container:"

stopWaitPage() {
    [[ "$WEB" == [Nn]* ]] && return 0
    nginx -s stop 2>/dev/null || true
    local tries=0
    while [ -s /run/nginx.pid ] && [ $tries -lt 50 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    return 0
}

netInfo() {
    local file="$STORAGE/dsm.mac"
    if [ -z "$VM_NET_DEV" ]; then
        VM_NET_DEV=$(awk '$2 == "00000000" { print $1; exit }' /proc/net/route)
        [ -z "$VM_NET_DEV" ] && VM_NET_DEV=eth0
    fi
    if [ ! -d "/sys/class/net/$VM_NET_DEV" ]; then
        error "the network interface $VM_NET_DEV does not exist in the container: set VM_NET_DEV"
        exit 26
    fi
    if [ -z "$VM_NET_MAC" ]; then
        [ -s "$file" ] && VM_NET_MAC=$(tr -cd '[:print:]' < "$file")
        if [ -z "$VM_NET_MAC" ]; then
            # Synology's OUI (locally administered), derived from the container's host name
            VM_NET_MAC=$(md5sum < /proc/sys/kernel/hostname | sed 's/^\(..\)\(..\)\(..\).*$/02:11:32:\1:\2:\3/')
            echo "${VM_NET_MAC^^}" > "$file"
        fi
    fi
    VM_NET_MAC="${VM_NET_MAC^^}"
    VM_NET_MAC="${VM_NET_MAC//-/:}"
    if [[ ! "$VM_NET_MAC" =~ ^([0-9A-F]{2}:){5}[0-9A-F]{2}$ ]]; then
        error "invalid MAC address '$VM_NET_MAC' (from MAC or $file): use 12 hex digits like 02:11:32:AA:BB:CC"
        exit 28
    fi
    IP=$(ip -4 -o address show dev "$VM_NET_DEV" | awk '{ split($4, a, "/"); print a[1]; exit }')
    echo "$IP" > "$RUN_DIR/qemu.ip"
}

# "22,5000,USER_PORTS" -> hostfwd=tcp::22-GUEST:22,... (a/udp and a/tcp accepted, duplicates once)
userForwards() {
    local list="${USER_PORTS//,/ } 22 5000" out="" port proto num seen=" "
    for port in $list; do
        proto=tcp
        num="$port"
        case "$port" in
            */udp) proto=udp num="${port%/udp}" ;;
            */tcp) num="${port%/tcp}" ;;
        esac
        [[ "$seen" == *" $proto:$num "* ]] && continue
        seen+="$proto:$num "
        out+="hostfwd=$proto::$num-$VM_NET_IP:$num,"
    done
    echo "${out%,}"
}

configureUser() {
    NET_OPTS="-netdev user,id=hostnet0,host=$NET_PREFIX.1,net=$NET_PREFIX.0/24,dhcpstart=$VM_NET_IP,hostname=$VM_NET_HOST"
    NET_OPTS+=",$(userForwards)"
}

closeBridge() {
    [ -s /var/run/dnsmasq.pid ] && kill "$(cat /var/run/dnsmasq.pid)" 2>/dev/null
    ip link delete "$VM_NET_TAP" >/dev/null 2>&1 || true
    ip link delete dockerbridge >/dev/null 2>&1 || true
    return 0
}

configureNAT() {
    local exclude="" gateway_mac

    if [ ! -c /dev/net/tun ]; then
        mkdir -p /dev/net
        mknod /dev/net/tun c 10 200 2>/dev/null && chmod 666 /dev/net/tun
    fi
    if [ ! -c /dev/net/tun ] || ! (exec 3<>/dev/net/tun) 2>/dev/null; then
        error "the TUN device is missing: $ADD_SETTING --device /dev/net/tun"
        return 1
    fi
    if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then
        if ! { echo 1 > /proc/sys/net/ipv4/ip_forward; } 2>/dev/null; then
            error "IP forwarding is disabled: $ADD_SETTING --sysctl net.ipv4.ip_forward=1"
            return 1
        fi
    fi
    if ! ip link add dev dockerbridge type bridge 2>/dev/null; then
        error "cannot create the bridge: $ADD_SETTING --cap-add NET_ADMIN"
        return 1
    fi
    ip address add "$NET_PREFIX.1/24" broadcast "$NET_PREFIX.255" dev dockerbridge || return 1
    ip link set dockerbridge up || return 1
    if ! ip tuntap add dev "$VM_NET_TAP" mode tap; then
        error "cannot create the tap device: $ADD_SETTING --device /dev/net/tun"
        return 1
    fi
    gateway_mac=$(echo "$VM_NET_MAC" | md5sum | sed 's/^\(..\)\(..\)\(..\)\(..\)\(..\).*$/02:\1:\2:\3:\4:\5/')
    ip link set dev "$VM_NET_TAP" address "$gateway_mac" || warn "cannot set the tap's MAC address"
    ip link set "$VM_NET_TAP" up promisc on || return 1
    ip link set dev "$VM_NET_TAP" master dockerbridge || return 1

    if [ -n "$HOST_PORTS" ]; then
        if [[ "$HOST_PORTS" == *,* ]]; then
            exclude=" -m multiport ! --dports $HOST_PORTS"
        else
            exclude=" ! --dport $HOST_PORTS"
        fi
    fi
    if ! iptables -t nat -A POSTROUTING -o "$VM_NET_DEV" -j MASQUERADE; then
        error "iptables cannot use the nat table: load the ip_tables and iptable_nat modules on the host"
        return 1
    fi
    # shellcheck disable=SC2086
    iptables -t nat -A PREROUTING -i "$VM_NET_DEV" -d "$IP" -p tcp$exclude -j DNAT --to "$VM_NET_IP" || return 1
    iptables -t nat -A PREROUTING -i "$VM_NET_DEV" -d "$IP" -p udp -j DNAT --to "$VM_NET_IP" || return 1
    iptables -t mangle -A POSTROUTING -p udp --dport bootpc -j CHECKSUM --checksum-fill >/dev/null 2>&1 || true

    NET_OPTS="-netdev tap,id=hostnet0,ifname=$VM_NET_TAP,script=no,downscript=no"

    # DHCP: always the same address for this MAC, never expiring
    mkdir -p /var/lib/misc
    echo "0 $VM_NET_MAC $VM_NET_IP $VM_NET_HOST 01:$VM_NET_MAC" > /var/lib/misc/dnsmasq.leases
    if ! dnsmasq --dhcp-authoritative --dhcp-range="$VM_NET_IP,$VM_NET_IP" \
        --dhcp-host="$VM_NET_MAC,,$VM_NET_IP,$VM_NET_HOST,infinite" \
        --dhcp-option=option:netmask,255.255.255.0 \
        --dhcp-option=option:router,"$NET_PREFIX.1" \
        --dhcp-option=option:dns-server,"$NET_PREFIX.1" \
        --address=/host.lan/"$NET_PREFIX.1"; then
        error "dnsmasq failed to start"
        return 1
    fi
    return 0
}

NET_OPTS=""
if [[ "$NETWORK" == [Nn]* ]]; then
    stopWaitPage
    return 0
fi

netInfo
stopWaitPage
if [ -n "$VM_NET_IP" ]; then
    atLeast 7.62 && VM_NET_IP=$(guestIP "$VM_NET_IP")
elif atLeast 7.62 && [[ "${NETWORK,,}" != user* ]]; then
    VM_NET_IP=$(natGuestIP "$IP") || { error "no free 172.x.y.0/24 for the guest"; exit 26; }
else
    VM_NET_IP=20.20.20.21
fi
NET_PREFIX="${VM_NET_IP%.*}"
info "the guest's address: $VM_NET_IP"

if [[ "${NETWORK,,}" != user* ]]; then
    if ! configureNAT; then
        closeBridge
        NETWORK=user
        warn "an error occurred, falling back to user-mode networking!"
        [ -z "$USER_PORTS" ] && info "Notice: to expose more ports in this mode, name them in USER_PORTS, e.g. USER_PORTS=5000,5001"
    fi
fi
if [[ "${NETWORK,,}" == user* ]]; then
    configureUser
fi

NET_OPTS+=" -device virtio-net-pci,id=net0,netdev=hostnet0,romfile=,mac=$VM_NET_MAC"
return 0
