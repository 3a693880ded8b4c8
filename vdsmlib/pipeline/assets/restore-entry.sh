#!/usr/bin/env bash
# The final image's entry point (PID 1): check what a restore needs, then run the base image's
# own entry point (virtual-dsm: `/usr/bin/tini -s /run/entry.sh`), recorded at flatten in
# /etc/vdsm-ci/entrypoint and /etc/vdsm-ci/cmd (one argument per line). Arguments given to
# `docker run IMAGE ARGS...` replace the base's CMD, as they would without this script.
#
# Stopping: every start restores the checkpoint (`-incoming file:/storage/final.state`, with
# `-snapshot`: the disks' writes go to temporary overlays), so nothing of a running container's
# state is kept and DSM's own shutdown buys nothing. virtual-dsm v7.41 (src/power.sh) answers
# SIGTERM by asking DSM to shut down through host.bin and waits for QEMU up to 2 x 50 s (twice
# that under TCG): longer than `docker stop`'s 10 s, so Docker would kill it (exit 137). Here
# SIGTERM (or SIGINT) ends QEMU with SIGTERM (QEMU flushes its disks and exits at once), then
# every other process, and the container exits 0 within seconds.
set -u
# (Both places can be moved by the environment, for tests.)
etc=${VDSM_CI_ETC:-/etc/vdsm-ci}

/bin/bash "${VDSM_CI_RESTORE_CHECK:-/usr/local/bin/vdsm-ci-restore-check}" || exit

mapfile -t argv <"$etc/entrypoint"
if [ $# -gt 0 ]; then
  argv+=("$@")
else
  mapfile -t cmd <"$etc/cmd"
  argv+=("${cmd[@]}")
fi

# qemu_pids: the QEMU processes of this container (by argv[0]: virtual-dsm renames QEMU's
# thread with `-name ...,process=`, so its comm is no guide); a zombie has no cmdline.
qemu_pids() {
  local p argv0
  for p in /proc/[0-9]*; do
    argv0=
    { IFS= read -r -d '' argv0 <"$p/cmdline"; } 2>/dev/null
    case ${argv0##*/} in qemu-system-*) echo "${p#/proc/}" ;; esac
  done
}

stop() {
  trap '' TERM INT
  local pids i
  pids=$(qemu_pids)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    # up to 10 s for QEMU to close its disks
    for ((i = 0; i < 100; i++)); do
      [ -z "$(qemu_pids)" ] && break
      sleep 0.1
    done
  fi
  echo "vdsm-ci: stopped (the next start restores the snapshot again)"
  kill -KILL -1 2>/dev/null
  exit 0
}
trap stop TERM INT

"${argv[@]}" &
wait $!
exit
