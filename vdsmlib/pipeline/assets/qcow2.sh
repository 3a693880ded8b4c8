#!/usr/bin/env bash
# qcow2.sh IMAGE: make a raw disk image qcow2 in place, so that QEMU can snapshot it. Inserted by
# vdsm-ci's build base in front of the lines that attach the boot and system disks.
#
# The image's own format is the top-level "format" key of `qemu-img info --output=json`. Since
# QEMU 8 that JSON opens with a "children" list whose first entry says "format": "file" (the
# protocol layer), so the first "format" in the text is not the image's. Only raw is converted;
# qcow2 is left as it is (with whatever it holds: a restore needs the disks as saved); anything else
# stops the container start, because attaching it as qcow2 would fail later and less clearly.
set -eu
f="$1"
[ -s "$f" ] || exit 0
# A qcow2 image opens with the magic QFI\xfb (QEMU docs/interop/qcow2.rst): left as it is without
# starting qemu-img, as at every start of an installed or restored VM.
LC_ALL=C IFS= read -r -d '' -n 4 magic <"$f" || true
[ "$magic" = $'QFI\xfb' ] && exit 0
info=$(qemu-img info --output=json -- "$f") || {
  echo "vdsm-ci: qemu-img info $f failed: cannot tell its format" >&2
  exit 1
}
if command -v jq >/dev/null 2>&1; then
  fmt=$(printf '%s' "$info" | jq -r '.format // empty')
elif command -v python3 >/dev/null 2>&1 && python3 -c 'import json' 2>/dev/null; then
  fmt=$(printf '%s' "$info" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("format", ""))')
else
  # (python3-minimal has no json module.) qemu-img pretty-prints with four spaces per level:
  # the top-level key is the one indented by exactly four; "children" entries are deeper.
  fmt=$(printf '%s\n' "$info" | sed -n 's/^    "format": *"\([^"]*\)".*/\1/p' | head -n 1)
fi
case "$fmt" in
  qcow2)
    exit 0
    ;;
  raw)
    echo "vdsm-ci: converting $(basename "$f") from raw to qcow2"
    rm -f "$f.qcow2.tmp"
    qemu-img convert -f raw -O qcow2 -- "$f" "$f.qcow2.tmp"
    mv -f "$f.qcow2.tmp" "$f"
    ;;
  *)
    echo "vdsm-ci: $f is ${fmt:-of an unknown format}, neither raw nor qcow2: not converting it (remove it to reinstall, or restore the image it came from)" >&2
    exit 1
    ;;
esac
