"""Clean up after a build whose process ended without finishing (killed, or exited at once).

A build cleans up after itself on Ctrl-C and SIGTERM. Some ends leave it no chance: SIGKILL,
or ``papermill`` itself terminated, after which the notebook kernel that runs the build sees
its parent gone and exits on the spot (ipykernel's parent poller calls ``os._exit``), and the
stage kernels with it. Their stage VMs would keep running, unowned.

So every build (except one with ``keep``, whose VMs are meant to outlive it) starts a janitor:
a small process in a session of its own that waits for the build's process to end. If the
build ends normally it stops the janitor first; otherwise the janitor removes the run's
containers, its network and the stage VMs' QMP folders, and records the run as failed with the
reason. Its log is ``<run>/janitor.log``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main", "spawn"]

log = logging.getLogger(__name__)

#: how often the janitor looks whether the build's process still runs
POLL_SECONDS = 0.5


def spawn(run_dir: Path, run_id: str, pid: int | None = None) -> subprocess.Popen[bytes]:
    """Start the janitor of ``run_id`` for process ``pid`` (default: this one)."""
    log_file = (run_dir / "janitor.log").open("ab")
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vdsmlib.pipeline.janitor",
                "--pid",
                str(pid or os.getpid()),
                "--run-id",
                run_id,
                "--run-dir",
                str(run_dir),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C to the build's process group spares it
        )
    finally:
        log_file.close()


def stop(janitor: subprocess.Popen[bytes] | None) -> None:
    """The build finished (or cleaned up) itself: the janitor has nothing to do."""
    if janitor is None or janitor.poll() is not None:
        return
    janitor.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        janitor.wait(timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (ended, not yet reaped by its parent) counts as ended
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] != "Z"
    return True


def clean_up(run_dir: Path, run_id: str) -> list[str]:
    """Remove what run ``run_id`` left running and record it failed; returns what went."""
    from vdsmlib.checkpoints.vm import QMP_DIR_IN_CONTAINER
    from vdsmlib.docker import labels as L
    from vdsmlib.docker.engine import connect
    from vdsmlib.docker.images import clean
    from vdsmlib.evidence.record import load_record

    client = connect()
    filters = {"label": [f"{L.OWNER}={L.OWNER_VALUE}", f"{L.RUN_ID}={run_id}"]}
    qmp_dirs = [
        m["Source"]
        for c in client.containers.list(all=True, filters=filters)
        for m in c.attrs.get("Mounts", [])
        if m.get("Destination") == QMP_DIR_IN_CONTAINER
    ]
    report = clean(client, run_id=run_id)
    for folder in qmp_dirs:
        shutil.rmtree(folder, ignore_errors=True)
    removed = [*report["containers"], *report["networks"]]
    path = run_dir / "result.json"
    with contextlib.suppress(OSError, ValueError):
        record = load_record(path)
        if record.status == "running":
            for stage in record.stages:
                if stage.status == "running":
                    stage.status = "failed"
            record.status = "failed"
            record.error = (
                "the build's process ended without finishing (killed, or its papermill ended); "
                f"the janitor removed {len(report['containers'])} container(s) of this run"
            )
            record.write(run_dir, latest=False)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vdsmlib.pipeline.janitor")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # stopped by the build (it finished): leave quietly
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while _alive(args.pid):
        time.sleep(POLL_SECONDS)
    log.warning("the build's process %d ended without finishing: cleaning up", args.pid)
    removed = clean_up(args.run_dir, args.run_id)
    log.warning("removed: %s", ", ".join(removed) or "nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
