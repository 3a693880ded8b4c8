#!/usr/bin/env bash
# Convert a raw disk image to qcow2 in place (no-op when it already is qcow2), so that QEMU can
# snapshot it. Inserted by vdsm-ci's build base in front of the lines that attach the boot and
# system disks.
set -eu
f="$1"
[ -s "$f" ] || exit 0
# The image's own format is the top-level "format" (since QEMU 8 a "children" list with the
# protocol layer's "format": "file" comes first).
fmt=$(qemu-img info --output=json "$f" | jq -r .format)
[ "$fmt" = "qcow2" ] && exit 0
echo "vdsm-ci: converting $(basename "$f") from ${fmt:-unknown} to qcow2"
qemu-img convert -f "${fmt:-raw}" -O qcow2 "$f" "$f.qcow2.tmp"
mv -f "$f.qcow2.tmp" "$f"
