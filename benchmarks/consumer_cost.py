"""What a consumer pays for the final simulator image: bytes to pull, seconds to login, to healthy.

    .venv/bin/python benchmarks/consumer_cost.py [--image IMAGE] [--runs 3] [--json PATH]

Without ``--image`` it builds the simulator's final image first (``Build("sim")``: a no-op when
it exists, else a resume from the newest checkpoints or a full build). Then it prints, in one run:

- image size / floor: the floor is the image without its disks plus what restoring ``final``
  needs of them (``qemu-img measure`` of the disks' contents, as qcow2; final's VM state is
  ``/storage/final.state``, counted whole), read by the image's own qemu-img. Goal <= 1.05.
- restore to first login / cold boot to the Web API: the final image started fresh until an
  admin login through the Web API succeeds, against the simulator image with the build's VM
  settings and ``SIM_INSTALL_DELAY=0`` until ``SYNO.API.Info`` answers; medians. Goal <= 0.1.
- healthy minus first login: the end of Docker's first successful health check (from the
  container's health log) minus the first login the benchmark saw. Goal <= 0.5 s.
- the restore path, per run: ``docker run`` -> container entry (PID 1 starts) -> network set-up
  (dnsmasq starts: virtual-dsm's NAT is ready) -> QEMU start (its process starts) -> QEMU
  set up (its daemonizing parent returned: the entry script starts its ``tail`` of QEMU's log;
  under ``-incoming`` the state loads after that, in QEMU's main loop) -> first answer
  (``SYNO.API.Info`` from the host: state loaded, guest awake) -> first login.
  Process start times come from ``/proc/<pid>/stat`` inside the container, on the same kernel
  clock (boot time) as the host's marks; the process names are the simulator's twin of
  virtual-dsm (simulator/vdsm_sim/image/container/entry.sh).

Not measured here: bytes pushed by a rebuild after a post-wizard edit (needs a registry and two
builds). The containers it starts carry the benchmark label and are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import requests
from build_resume import BenchmarkError, _died, _tail, cold_boot_sample, fresh_container
from vdsm_sim.image.build import ensure_sim_image

from vdsmlib.checkpoints.footprint import disk_footprints, storage_files
from vdsmlib.docker.engine import connect
from vdsmlib.docker.images import get_image, image_size
from vdsmlib.params import Params, load_params
from vdsmlib.pipeline import Build

POLL = 0.02
INFO = "/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query&query=SYNO.API.Auth"
#: every process of the container: pid, start (clock ticks since boot), command line
LIST_PROCS = r"""
for p in /proc/[0-9]*; do
  s=$(cat "$p/stat" 2>/dev/null) || continue
  read -r -a f <<<"${s##*) }"
  printf '%s\t%s\t%s\n' "${p#/proc/}" "${f[19]}" "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
done
"""
#: the restore path's phases: (label, the mark that ends it)
PHASES = (
    ("container entry: docker run -> PID 1", "container entry"),
    ("network set-up: PID 1 -> dnsmasq", "network set-up"),
    ("other set-up: dnsmasq -> QEMU process", "QEMU start"),
    ("QEMU set-up: QEMU -> daemonized", "state load"),
    ("state load + guest wake + first answer", "first answer"),
    ("first login", "first login"),
)


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass
class RestoreRun:
    login: float  # seconds from `docker run` to the first successful login
    healthy: float  # ... to the end of the first successful health check
    marks: dict[str, float] = field(default_factory=dict)  # boot-clock seconds of each mark


def floor_of(client: docker.DockerClient, image: str) -> dict[str, Any]:
    """Image size, the disks' bytes, and what restoring `final` needs of them."""
    disks = disk_footprints(client, image, "final")
    held = sum(d.bytes for d in disks.values())
    needed = sum(d.required or 0 for d in disks.values())
    # the state file is needed whole and is in the image's size already (not in `held`)
    state = storage_files(client, image).get("final.state", 0)
    got = get_image(client, image)
    assert got is not None
    size = image_size(got)
    floor = size - held + needed
    listed = {
        name: {"bytes": d.bytes, "snapshots": [s.name for s in d.snapshots]}
        for name, d in disks.items()
    }
    return {
        "image": size,
        "floor": floor,
        "held": held + state,
        "needed": needed + state,
        "disks": listed,
    }


def _processes(container: Any) -> list[tuple[int, float, str]]:
    _, out = container.exec_run(["bash", "-c", LIST_PROCS])
    ticks = 100.0  # USER_HZ: what /proc/<pid>/stat counts in on Linux
    rows = []
    for line in out.decode(errors="replace").splitlines():
        pid, start, cmd = [*line.split("\t"), "", ""][:3]
        if pid.isdigit() and start.isdigit():
            rows.append((int(pid), int(start) / ticks, cmd.strip()))
    return sorted(rows, key=lambda r: r[1])


def _wall_to_boot(stamp: str, offset: float) -> float:
    """Docker's RFC 3339 time (nanoseconds) on the boot clock, given wall - boot ``offset``."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))
    return seconds - offset


def restore_run(
    client: docker.DockerClient, image: str, params: Params, bench_id: str
) -> RestoreRun:
    marks: dict[str, float] = {}
    offset = time.time() - boottime()
    marks["docker run"] = boottime()
    user, password = params.admin.user, params.admin.password
    with fresh_container(
        client, image, bench_id, devices=list(params.run.devices), cap_add=params.run.cap_add
    ) as (container, url):
        deadline = time.monotonic() + params.timeouts.restore
        login = f"{url}/webapi/auth.cgi?api=SYNO.API.Auth&version=3&method=login"
        while "first login" not in marks:
            if time.monotonic() > deadline:
                raise BenchmarkError(
                    f"no login within {params.timeouts.restore} s:\n{_tail(container)}"
                )
            if (why := _died(container)) is not None:
                raise BenchmarkError(why)
            try:
                if "first answer" not in marks:
                    if (
                        requests.get(url + INFO, timeout=2)
                        .headers.get("Content-Type", "")
                        .startswith("application/json")
                    ):
                        marks["first answer"] = boottime()
                else:
                    answer = requests.get(
                        login,
                        params={"account": user, "passwd": password, "format": "sid"},
                        timeout=5,
                    ).json()
                    if answer.get("success"):
                        marks["first login"] = boottime()
            except (requests.RequestException, ValueError):
                pass
            time.sleep(POLL)
        for _, start, cmd in _processes(container):
            if start < marks["docker run"] - 5:
                continue  # not of this start
            if "container entry" not in marks:
                marks["container entry"] = start  # PID 1 is the first to start
            elif cmd.startswith("dnsmasq") and "network set-up" not in marks:
                marks["network set-up"] = start
            elif cmd.startswith("qemu-system") and "QEMU start" not in marks:
                marks["QEMU start"] = start
            elif "qemu.log" in cmd and "QEMU start" in marks and "state load" not in marks:
                marks["state load"] = start
        healthy_at = None
        while healthy_at is None and time.monotonic() < deadline + 30:
            container.reload()
            health = container.attrs["State"].get("Health") or {}
            ok = [p for p in health.get("Log") or [] if p.get("ExitCode") == 0]
            if ok:
                healthy_at = _wall_to_boot(ok[0]["End"], offset)
            else:
                time.sleep(0.1)
        if healthy_at is None:
            raise BenchmarkError("the container never turned healthy")
    return RestoreRun(
        login=marks["first login"] - marks["docker run"],
        healthy=healthy_at - marks["docker run"],
        marks=marks,
    )


def profile_rows(run: RestoreRun) -> list[tuple[str, float | None]]:
    """Seconds of each phase of one restore (None where its end mark was not found)."""
    rows: list[tuple[str, float | None]] = []
    previous = run.marks["docker run"]
    for label, mark in PHASES:
        at = run.marks.get(mark)
        rows.append((label, None if at is None else at - previous))
        if at is not None:
            previous = at
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="the final image (default: build the simulator's)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    client = connect()
    params = load_params("sim")
    bench_id = f"consumer-{uuid.uuid4().hex[:8]}"
    image = args.image
    if image is None:
        record = asyncio.run(Build("sim", {}, executor="inline", client=client).run())
        if not record.image:
            raise BenchmarkError(f"the build made no image: {record.error}")
        image = record.image
        print(f"final image {image} ({record.plan}, {record.seconds:.0f} s)")
    sizes = floor_of(client, image)
    sim = ensure_sim_image(client).ref
    accel = "tcg"
    restores: list[RestoreRun] = []
    colds: list[float] = []
    for n in range(args.runs):
        restores.append(restore_run(client, image, params, bench_id))
        colds.append(cold_boot_sample(client, sim, params, accel, bench_id))
        print(
            f"run {n + 1}: login {restores[-1].login:.2f} s, healthy {restores[-1].healthy:.2f} s,"
            f" cold boot to API {colds[-1]:.2f} s",
            flush=True,
        )
    login = statistics.median(r.login for r in restores)
    cold = statistics.median(colds)
    late = [r.healthy - r.login for r in restores]
    print(f"\nimage {image}")
    print(
        f"image size / floor: {sizes['image'] / 1e6:.1f} MB / {sizes['floor'] / 1e6:.1f} MB = "
        f"{sizes['image'] / sizes['floor']:.3f} (goal <= 1.05); storage holds "
        f"{sizes['held'] / 1e6:.1f} MB, restoring final needs {sizes['needed'] / 1e6:.1f} MB"
    )
    for name, disk in sizes["disks"].items():
        print(f"  {name}: {disk['bytes'] / 1e6:.1f} MB, snapshots {disk['snapshots']}")
    print(
        f"restore to first login / cold boot to Web API: {login:.2f} s / {cold:.2f} s = "
        f"{login / cold:.3f} (goal <= 0.1)"
    )
    print(
        f"healthy minus first login: median {statistics.median(late):.2f} s, max {max(late):.2f} s"
        f" (goal <= 0.5 s); samples {', '.join(f'{x:.2f}' for x in late)}"
    )
    print("\nrestore path (seconds per phase; each column one run)")
    table = [profile_rows(r) for r in restores]
    for i, (name, _) in enumerate(table[0]):
        cells = [row[i][1] for row in table]
        print(f"  {name:<40}" + "".join("     n/a" if c is None else f"{c:8.2f}" for c in cells))
    print(f"  {'total to first login':<40}" + "".join(f"{r.login:8.2f}" for r in restores))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "image": image,
                    "sizes": sizes,
                    "restores": [r.__dict__ for r in restores],
                    "cold_boot": colds,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
