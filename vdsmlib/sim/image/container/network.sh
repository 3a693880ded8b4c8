#!/usr/bin/env bash
# QEMU user-mode networking. The guest is 10.0.2.15; its port 5000 is forwarded to
# 127.0.0.1:15000 (behind the "please wait" proxy on port 5000), SMB, iSCSI and NFS directly.
set -Eeuo pipefail

GUEST_IP=10.0.2.15
GUEST_HTTP_FORWARD=15000
NET_OPTS="-netdev user,id=hostnet0,net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3"
NET_OPTS+=",hostfwd=tcp:127.0.0.1:$GUEST_HTTP_FORWARD-:5000"
NET_OPTS+=",hostfwd=tcp::445-:445,hostfwd=tcp::3260-:3260,hostfwd=tcp::2049-:2049"
NET_OPTS+=" -device virtio-net-pci,netdev=hostnet0,id=net0,mac=$MAC,bus=pcie.0,addr=0x3,romfile="
return 0
