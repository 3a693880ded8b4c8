#!/usr/bin/env bash
# Make the simulator's Debian base image where no registry serves one: debootstrap minbase,
# trimmed as Debian's slim images are (no documentation, translations, .debs or apt lists, and
# dpkg told to keep them out), imported into Docker with the project's owner label.
#
# usage: debian-base.sh [IMAGE SUITE MIRROR]   (defaults: the simulator's, as in build.py)
#
# Needs root (debootstrap makes device nodes and chroots), once per Docker engine: `sudo make
# deps` runs it when the image is missing. Everything after it runs as an ordinary user in the
# `docker` group. Where a registry serves Debian, no root is needed at all:
#   docker pull debian:trixie-slim && docker tag debian:trixie-slim vdsm-ci/debian:trixie
set -euo pipefail
[ $# = 0 ] || [ $# = 3 ] || { echo "usage: $0 [IMAGE SUITE MIRROR]" >&2; exit 64; }
image=${1:-vdsm-ci/debian:trixie} suite=${2:-trixie} mirror=${3:-http://deb.debian.org/debian}

if [ "$(id -u)" != 0 ]; then
  echo "making the base image $image needs root once (debootstrap): run 'sudo make deps'," \
    "or where a registry serves Debian: docker pull debian:$suite-slim &&" \
    "docker tag debian:$suite-slim $image" >&2
  exit 77
fi
debootstrap=$(command -v debootstrap || { [ -x /usr/sbin/debootstrap ] && echo /usr/sbin/debootstrap; } || true)
if [ -z "$debootstrap" ]; then
  echo "debootstrap not found, needed to make $image: apt-get install debootstrap" >&2
  exit 69
fi

rootfs=$(mktemp -d /var/tmp/vdsm-debootstrap-XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "making base image $image with debootstrap ($suite from $mirror)"
if ! "$debootstrap" --variant=minbase "$suite" "$rootfs" "$mirror"; then
  echo "debootstrap of $suite from $mirror failed: check network access to the Debian archive and retry" >&2
  exit 1
fi

rm -f "$rootfs"/var/cache/apt/archives/*.deb
rm -rf "$rootfs/var/lib/apt/lists"
mkdir -p "$rootfs/var/lib/apt/lists/partial"
rm -rf "$rootfs/usr/share/man" "$rootfs/usr/share/info" "$rootfs/usr/share/lintian"
if [ -d "$rootfs/usr/share/locale" ]; then
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
fi
if [ -d "$rootfs/usr/share/doc" ]; then
  find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
fi
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/vdsm-ci-excludes" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF

echo "importing $rootfs into Docker as $image"
tar -C "$rootfs" -c . | docker import \
  -c 'CMD ["/bin/bash"]' \
  -c 'LABEL vdsm-ci.owner="vdsm-ci" vdsm-ci.kind="sim-base"' \
  - "$image" >/dev/null
docker image inspect --format "$image {{.Id}}" "$image"
