#!/usr/bin/env bash
# The host helper and the guest's virtio-serial channel, as vdsm/virtual-dsm v7.41
# src/serial.sh wires its host.bin: QEMU connects the port "vchannel" to 127.0.0.1:12345, and
# the helper answers http://127.0.0.1:2210/read?command=10 with what the guest reported.
set -Eeuo pipefail

python3 /run/host.py &
HOST_HELPER_PID=$!

waitPort() {
    local port=$1 code=$2 tries=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        sleep 0.1
        tries=$((tries + 1))
        if [ $tries -gt 50 ]; then
            error "the host helper does not listen on 127.0.0.1:$port"
            exit "$code"
        fi
    done
}
waitPort 2210 58
waitPort 12345 59

# The console on a pty, which entry.sh copies into the container log (QEMU names the pty on
# its stdout: "char device redirected to /dev/pts/N (label serial0)").
SERIAL_OPTS="-serial pty"
# from 7.63 QEMU runs in the foreground with the console on its stdio (v7.65 src/serial.sh:155)
atLeast 7.63 && SERIAL_OPTS="-serial mon:stdio"
SERIAL_OPTS+=" -device virtio-serial-pci,id=virtio-serial0,bus=pcie.0,addr=0x3"
SERIAL_OPTS+=" -chardev socket,id=charchannel0,host=127.0.0.1,port=12345,reconnect=10"
SERIAL_OPTS+=" -device virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,name=vchannel"
return 0
