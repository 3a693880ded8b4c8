#!/usr/bin/env bash
# Graphics, as vdsm/virtual-dsm v7.41 src/display.sh with its defaults: DISPLAY=none makes the
# adaptor none too, so there is no display device (GPU passthrough is not twinned).
set -Eeuo pipefail

: "${VGA:=virtio}"
: "${DISPLAY:=none}"

[[ "${DISPLAY,,}" == "none" ]] && VGA="none"
DISPLAY_OPTS="-display $DISPLAY -vga $VGA"
return 0
