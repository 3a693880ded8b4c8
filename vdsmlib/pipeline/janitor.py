"""Clean up after a build whose process ended without finishing (killed, or exited at once).

A build cleans up after itself on Ctrl-C and SIGTERM. Some ends leave it no chance: SIGKILL,
or ``papermill`` itself terminated, after which the notebook kernel that runs the build sees
its parent gone and exits on the spot (ipykernel's parent poller calls ``os._exit``), and the
stage kernels with it. Their stage VMs would keep running, unowned.

So every build (except one with ``keep``, whose VMs are meant to outlive it) starts a janitor:
a small process in a session of its own that waits for the build's process to end. If the
build ends normally it stops the janitor first; otherwise the janitor removes the run's
containers, its network, the stage VMs' QMP folders, the images its flatten was building and a
candidate no smoke test promoted, drops the cookies of the browser's saved session, records
the stage that stopped (``interrupted``, with the signal when the process's exit status can
still be read: ``/proc/<pid>/stat`` of a zombie), the stages never reached (``not-reached``)
and the run as failed, and writes ``report.html``. Its log is ``<run>/janitor.log``.
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

__all__ = [
    "clean_up",
    "exit_signal",
    "how_it_ended",
    "main",
    "project_repositories",
    "spawn",
]

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


def exit_signal(pid: int) -> str | None:
    """The signal that ended ``pid``, while it is a zombie (its parent has not collected its
    exit status yet): the ``exit_code`` field of ``/proc/<pid>/stat`` (proc(5)); else None."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # fields[0] is the state (field 3); exit_code is field 52
        if fields[0] == "Z":
            status = int(fields[49])
            if status & 0x7F:
                return signal.Signals(status & 0x7F).name
    return None


def how_it_ended(signal_name: str | None) -> str:
    """One phrase for the record: the signal when known, else what ends a process unnoticed."""
    if signal_name:
        return f"was killed by {signal_name}"
    return (
        "ended without finishing (killed: SIGKILL or the OOM killer, or its papermill ended; "
        "its exit status was collected before the janitor could read it)"
    )


def clean_up(run_dir: Path, run_id: str, how: str | None = None) -> list[str]:
    """Remove what run ``run_id`` left (containers, network, QMP folders, the images its
    flatten was building, a candidate no smoke test promoted) and record where and how it
    stopped; write its report.html; returns what went."""
    from vdsmlib.checkpoints.vm import QMP_DIR_IN_CONTAINER
    from vdsmlib.docker import labels as L
    from vdsmlib.docker.engine import connect
    from vdsmlib.docker.images import clean, get_image, remove_image
    from vdsmlib.evidence.record import load_record
    from vdsmlib.evidence.report import write_report
    from vdsmlib.pipeline.context import RunState
    from vdsmlib.pipeline.trust import smoke_passed
    from vdsmlib.wizard.secrets import forget_run_cookies

    how = how or how_it_ended(None)
    # the browser's saved session first: a killed stage never dropped its cookie
    forget_run_cookies(run_dir)
    client = connect()
    filters = {"label": [f"{L.OWNER}={L.OWNER_VALUE}", f"{L.RUN_ID}={run_id}"]}
    qmp_dirs = [
        m["Source"]
        for c in client.containers.list(all=True, filters=filters)
        for m in c.attrs.get("Mounts", [])
        if m.get("Destination") == QMP_DIR_IN_CONTAINER
    ]
    candidate: list[str] = []
    with contextlib.suppress(Exception):  # no state, or an image that cannot be looked at
        tag = RunState.load(run_dir).candidate
        image = get_image(client, tag) if tag else None
        if tag and image is not None and smoke_passed(str(image.id)) is None:
            # the candidate first: its parents are flatten's intermediate images of this run
            remove_image(client, tag)
            candidate.append(tag)
    # the run's containers and network, and its untagged images (flatten's intermediates);
    # again until two passes a second apart find nothing: the engine may still be finishing a
    # step of the build the process had asked for
    report = clean(client, run_id=run_id)
    quiet = 0
    for _ in range(60):
        time.sleep(1.0)
        again = clean(client, run_id=run_id)
        for key in ("containers", "images", "networks"):
            report[key] += again[key]
        found = again["containers"] or again["images"]
        quiet = 0 if found else quiet + 1
        if quiet == 2:
            break
    for folder in qmp_dirs:
        shutil.rmtree(folder, ignore_errors=True)
    removed = [*report["containers"], *report["networks"], *candidate, *report["images"]]
    path = run_dir / "result.json"
    with contextlib.suppress(OSError, ValueError):
        record = load_record(path)
        if record.status == "running":
            stopped = None
            for stage in record.stages:
                if stage.status == "running":
                    stopped = stage.name
                    stage.status = "interrupted"
                    stage.detail = f"the build's process {how}"
                elif stage.status == "pending":
                    stage.status = "not-reached"
                    stage.detail = "the build stopped before this stage"
            record.status = "failed"
            where = f"stage {stopped}: " if stopped else ""
            images = len(candidate) + len(report["images"])
            record.error = (
                f"{where}the build's process {how}; the janitor removed "
                f"{len(report['containers'])} container(s) and {images} image(s) of this run"
            )
            record.write(run_dir, latest=False)
            write_report(run_dir, record)
    with contextlib.suppress(OSError):
        (run_dir / ".reserve").unlink()
    # again: a stage kernel that outlived the build's process may have saved one since
    forget_run_cookies(run_dir)
    return removed


def project_repositories(params_dir: Path | None = None) -> set[str]:
    """The repositories this project's params name (final images, checkpoint cache, base
    images such as the simulator's) and those it tags checkpoints and build bases in: the
    only ones ``vdsm clean`` removes tags from."""
    from vdsmlib.checkpoints.vm import CHECKPOINT_REPOSITORY
    from vdsmlib.params import available_targets, load_params
    from vdsmlib.pipeline.base import BASE_REPOSITORY

    repositories = {CHECKPOINT_REPOSITORY, BASE_REPOSITORY}
    for target in available_targets(params_dir):
        with contextlib.suppress(Exception):  # a target that does not load names nothing
            params = load_params(target, params_dir=params_dir)
            repositories.add(params.image.repository)
            if params.image.cache_repository:
                repositories.add(params.image.cache_repository)
            base = params.base.image.split("@", 1)[0]
            name, _, tag = base.rpartition(":")
            repositories.add(name if name and "/" not in tag else base)
    return repositories


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
    how = how_it_ended(exit_signal(args.pid))
    log.warning("the build's process %d %s: cleaning up", args.pid, how)
    removed = clean_up(args.run_dir, args.run_id, how)
    log.warning("removed: %s", ", ".join(removed) or "nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
