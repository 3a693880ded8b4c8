"""What checkpoints save: full build vs no-op rebuild vs resume, restore vs cold boot.

    .venv/bin/python benchmarks/build_resume.py [--samples 3] [--json PATH] [-v]

One run against the DSM simulator (params/sim.yaml):

1. a full build with ``no_cache=True`` (every VM stage runs; the build base and the simulator
   image are reused when they exist, as in any build);
2. a no-op rebuild (nothing changed: every stage skipped) and its time as a fraction of the
   full build (goal: at most 5 %);
3. ``make build`` itself, wall-clock from outside: a full one (``-p no_cache True``: papermill
   on ``notebooks/build.ipynb``, one notebook per stage) and then, ``--samples`` times, a no-op
   one (its dependency check and the library's no-op check, no kernel); the no-op's median as
   a fraction of the full one (goal: at most 3 %, printed PASS or OVER);
4. a resume after an edit of the post-wizard profile (a comment appended to
   ``profiles/dsm-7.2.2/post-wizard.yaml`` in a temporary copy of ``params/``; the repository's
   params stay untouched) and its time as a fraction of the full build;
5. restore-to-ready of the final image (a fresh container, until an admin login through the Web
   API succeeds) against a cold boot of the same guest (the simulator image with the build's VM
   settings, until SYNO.API.Info answers), medians of ``--samples`` each;
6. the image sizes before and after flattening.

Final images go to the repository ``vdsm-ci-bench/configured``. The builds carry an environment
variable with this run's id, so their checkpoints have fingerprints of their own: the benchmark
never reuses, replaces or removes a checkpoint that another build made. Everything it created
(containers, checkpoints, build bases, final images, temporary folders) is removed at the end,
also after a failure or Ctrl-C. Exit status: 0; 1 if a build or a measurement failed; 130 on
Ctrl-C; 2 if a no-op (rebuild or make build) ran a stage, the full make build skipped one, or
the resume did not resume from start-ready (then the numbers do not measure what they say;
typically a file was edited meanwhile). Nothing is
asserted about the timings: the numbers are printed, and written with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from vdsm_sim.image.build import ensure_sim_image

from vdsmlib.checkpoints.vm import vm_env
from vdsmlib.docker import labels as L
from vdsmlib.docker.engine import connect
from vdsmlib.docker.images import clean, remove_image
from vdsmlib.errors import VdsmError
from vdsmlib.params import Params, load_params
from vdsmlib.pipeline import STAGES, Build, BuildRecord, load_record
from vdsmlib.pipeline.context import RunState, new_run_id
from vdsmlib.project import params_dir
from vdsmlib.webapi.readiness import DsmApiReady, DsmLoginReady

REPOSITORY = "vdsm-ci-bench/configured"
TARGET = "sim"
EDITED_PROFILE = Path("profiles") / "dsm-7.2.2" / "post-wizard.yaml"
NOOP_GOAL = 0.05
MAKE_NOOP_GOAL = 0.03
ROOT = Path(__file__).resolve().parents[1]
#: Poll interval of the readiness probes: short, so the measurement is not quantised by it.
POLL = 0.1

log = logging.getLogger("build_resume")


class BenchmarkError(VdsmError):
    """A build or a measurement of the benchmark failed."""


@dataclass
class Samples:
    """Seconds of repeated measurements of one thing."""

    what: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Created:
    """Everything this benchmark made, so that cleanup finds it."""

    run_ids: list[str] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)


# -- builds --------------------------------------------------------------------------------------


def run_build(
    label: str,
    client: docker.DockerClient,
    created: Created,
    overrides: dict[str, Any],
    out_dir: Path,
    **kwargs: Any,
) -> BuildRecord:
    build = Build(
        TARGET,
        overrides,
        out_dir=out_dir,
        executor="inline",
        run_id=new_run_id(),
        client=client,
        **kwargs,
    )
    created.run_ids.append(build.run_id)
    print(f"{label}: run {build.run_id} ...", flush=True)
    try:
        record = asyncio.run(build.run())
    except VdsmError as err:
        raise BenchmarkError(
            f"{label} failed: {err} (record: {build.run_dir / 'result.json'})"
        ) from err
    print(f"{label}: {record.seconds:.1f} s ({record.plan})", flush=True)
    return record


def make_build(
    label: str, out_dir: Path, overrides: dict[str, Any], work: Path, created: Created, *args: str
) -> tuple[float, BuildRecord]:
    """Seconds of ``make build`` (wall-clock, its dependency checks included) and its record.

    The benchmark's knob and repository go in through PAPERMILL_ARGS, the executed notebook
    into ``work`` (not over the checkout's ``out/build-sim.ipynb``).
    """
    params = ["-p", "image_repository", overrides["image_repository"], "-p", "out_dir",
              str(out_dir), "-y", f"sim_knobs: {json.dumps(overrides['env'])}", *args]  # fmt: skip
    command = ["make", "--no-print-directory", "-C", str(ROOT), "build", f"DSM_VERSION={TARGET}",
               f"PAPERMILL_ARGS={shlex.join(params)}",
               f"BUILD_NOTEBOOK_OUT={work / 'build-make.ipynb'}"]  # fmt: skip
    before = {p.parent.name for p in out_dir.glob("*/result.json")}
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    new = [p for p in out_dir.glob("*/result.json") if p.parent.name not in before]
    created.run_ids += [p.parent.name for p in new]
    if done.returncode != 0:
        raise BenchmarkError(f"{label} failed: {(done.stdout + done.stderr)[-2000:]}")
    # the no-op check prints "record: <result.json>", the notebook "run folder: <folder>"
    named = [
        p
        for p in new
        if f"record: {p}" in done.stdout or f"folder: {p.parent.resolve()}" in done.stdout
    ]
    if len(named) != 1:
        raise BenchmarkError(f"{label} named no new record in {out_dir}: {done.stdout[-2000:]}")
    record_path = named[0]
    print(f"{label}: {seconds:.2f} s", flush=True)
    return seconds, load_record(record_path)


def edited_params(into: Path) -> Path:
    """A copy of params/ whose post-wizard profile has one more comment line."""
    target = into / "params"
    shutil.copytree(params_dir(), target)
    with (target / EDITED_PROFILE).open("a") as f:
        f.write(f"\n# edited by benchmarks/build_resume.py at {time.strftime('%H:%M:%S')}\n")
    return target


# -- restore vs cold boot ------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_container(
    client: docker.DockerClient,
    image: str,
    bench_id: str,
    *,
    env: dict[str, str] | None = None,
    devices: list[str] | None = None,
    cap_add: list[str] | None = None,
) -> Iterator[tuple[Any, str]]:
    """A detached container of ``image`` with 5000 on a loopback port Docker picks."""
    try:
        container = client.containers.create(
            image,
            environment=env or {},
            ports={"5000/tcp": ("127.0.0.1", None)},
            labels=L.owner_labels("benchmark", bench_id),
            devices=[f"{d}:{d}" for d in devices or []],
            cap_add=cap_add or None,
        )
    except docker.errors.DockerException as err:
        raise BenchmarkError(f"cannot create a container of {image}: {err}") from err
    try:
        # create + start rather than run(): a failed start must not leave a created container
        try:
            container.start()
        except docker.errors.DockerException as err:
            raise BenchmarkError(f"cannot start a container of {image}: {err}") from err
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"]
        yield container, f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)


def _tail(container: Any) -> str:
    try:
        return bytes(container.logs(tail=20)).decode(errors="replace")
    except docker.errors.DockerException:
        return "(no logs: container gone)"


def _died(container: Any) -> str | None:
    try:
        container.reload()
    except docker.errors.NotFound:
        return "container removed"
    if container.status in ("running", "created", "restarting"):
        return None
    return f"container {container.status}:\n{_tail(container)}"


def restore_sample(
    client: docker.DockerClient, image: str, params: Params, accel: str, bench_id: str
) -> float:
    """Seconds from `docker run` of the final image to a successful admin login."""
    devices = [*params.run.devices, *(["/dev/kvm"] if accel == "kvm" else [])]
    started = time.monotonic()
    with fresh_container(client, image, bench_id, devices=devices, cap_add=params.run.cap_add) as (
        container,
        url,
    ):
        DsmLoginReady(
            url,
            params.admin.user,
            params.admin.password,
            timeout=params.timeouts.restore,
            interval=POLL,
        ).wait(describe=lambda: _tail(container), alive=lambda: _died(container))
        return time.monotonic() - started


def cold_boot_sample(
    client: docker.DockerClient, sim_ref: str, params: Params, accel: str, bench_id: str
) -> float:
    """Seconds from `docker run` of the simulator (unconfigured) to SYNO.API.Info answering."""
    devices = [*params.run.devices, *(["/dev/kvm"] if accel == "kvm" else [])]
    started = time.monotonic()
    with fresh_container(
        client,
        sim_ref,
        bench_id,
        env=vm_env(params, accel),  # the same VM as the build's: KVM=N under TCG, RAM, CPU
        devices=devices,
        cap_add=params.run.cap_add,
    ) as (container, url):
        DsmApiReady(url, timeout=params.timeouts.boot, interval=POLL).wait(
            describe=lambda: _tail(container), alive=lambda: _died(container)
        )
        return time.monotonic() - started


# -- cleanup -------------------------------------------------------------------------------------


def cleanup(client: docker.DockerClient, created: Created) -> None:
    """Remove containers and images of every run, the benchmark repository's tags, temp dirs."""
    # A second Ctrl-C must not leave half of it behind.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        print("cleaning up ...", flush=True)
        for run_id in created.run_ids:
            try:
                clean(client, run_id=run_id, kinds=("checkpoint", "base", "final"))
            except (VdsmError, docker.errors.DockerException) as err:
                print(f"  could not clean run {run_id}: {err}", file=sys.stderr)
        try:
            tags = [t for i in client.images.list(name=REPOSITORY) for t in i.tags]
            for tag in tags:
                remove_image(client, tag)
        except (VdsmError, docker.errors.DockerException) as err:
            print(f"  could not remove {REPOSITORY} tags: {err}", file=sys.stderr)
        for folder in created.folders:
            shutil.rmtree(folder, ignore_errors=True)
        # A build that fails or is interrupted between admin and services leaves the QMP folder
        # of its kept VM behind (StageVm.start names it vdsm-ci-<last 4 of the run id>-*).
        for run_id in created.run_ids:
            for folder in Path(tempfile.gettempdir()).glob(f"vdsm-ci-{run_id[-4:]}-*"):
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        signal.signal(signal.SIGINT, previous)


# -- checks: are the measurements what they claim? ------------------------------------------------


def _fingerprints(out_dir: Path, record: BuildRecord) -> dict[str, str]:
    return RunState.load(out_dir / record.run_id).fingerprints


def check_builds(out_dir: Path, builds: dict[str, BuildRecord]) -> list[str]:
    """Reasons the no-op or the resume did not do what it stands for (empty: all good).

    A no-op that ran stages means something its fingerprints cover changed between the two
    builds (a vdsmlib module or profile edited meanwhile, another build retagging images).
    """
    problems = []
    full, noop, resume = builds["full"], builds["no-op"], builds["resume"]
    ran = [s.name for s in noop.stages if s.status != "skipped"]
    if ran:
        before, after = _fingerprints(out_dir, full), _fingerprints(out_dir, noop)
        changed = [k for k in after if before.get(k) != after[k]] or ["none"]
        problems.append(
            f"the no-op rebuild was no no-op: {', '.join(ran)} did not skip "
            f"(plan: {noop.plan}; fingerprints changed since the full build: "
            f"{', '.join(changed)}). Was a file under vdsmlib/ or params/ edited during the "
            "benchmark? Run it again on a quiet tree."
        )
    for name in ("make no-op",):
        record = builds[name]
        if any(s.status != "skipped" for s in record.stages) or record.image_run_id is None:
            problems.append(f"the {name} build was no no-op (plan: {record.plan})")
    full_make = builds["make full"]
    if [s.status for s in full_make.stages[1:]] != ["ran"] * (len(STAGES) - 1):
        problems.append(f"the full make build skipped stages (plan: {full_make.plan})")
    statuses = {s.name: s.status for s in resume.stages}
    if statuses.get("boot") not in ("resumed", "skipped") or statuses.get("post-wizard") != "ran":
        problems.append(
            f"the resume after the profile edit did not resume from start-ready "
            f"(boot {statuses.get('boot')}, post-wizard {statuses.get('post-wizard')}; "
            f"plan: {resume.plan})"
        )
    return problems


# -- report --------------------------------------------------------------------------------------


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def _stage_cell(record: BuildRecord, stage: str) -> str:
    entry = record.stage(stage)
    return f"{entry.status} {entry.seconds:.1f}"


def report(
    machine: dict[str, Any],
    builds: dict[str, BuildRecord],
    restore: Samples,
    cold: Samples,
    problems: list[str],
    make_full: float,
    make_noop: Samples,
) -> dict[str, Any]:
    full, noop, resume = builds["full"], builds["no-op"], builds["resume"]
    noop_fraction = noop.seconds / full.seconds
    make_fraction = make_noop.median / make_full
    resume_fraction = resume.seconds / full.seconds
    restore_ratio = restore.median / cold.median
    sizes = full.sizes
    print()
    print(
        f"machine: {machine['nproc']} CPUs, accelerator {machine['accelerator']} "
        f"({machine['accelerator_reason']}), QEMU {machine['qemu_version']}"
    )
    print()
    print(
        _table(
            ["stage (status s)", "full", "no-op", "resume"],
            [[s, *(_stage_cell(r, s) for r in (full, noop, resume))] for s in STAGES]
            + [["total s", *(f"{r.seconds:.1f}" for r in (full, noop, resume))]],
        )
    )
    print()
    print(
        _table(
            ["measurement", "seconds", "of full build"],
            [
                ["full build (no_cache)", f"{full.seconds:.2f}", "100.0%"],
                ["no-op rebuild", f"{noop.seconds:.2f}", f"{noop_fraction:.1%}"],
                ["resume after edit", f"{resume.seconds:.2f}", f"{resume_fraction:.1%}"],
            ],
        )
    )
    goal = "met" if noop_fraction <= NOOP_GOAL else "NOT met"
    print(f"no-op goal <= {NOOP_GOAL:.0%} of the full build: {goal}")
    print()
    print(
        _table(
            ["make build (wall-clock)", "seconds", "of full make build"],
            [
                ["full (no_cache, papermill)", f"{make_full:.2f}", "100.0%"],
                [
                    f"no-op (median of {len(make_noop.seconds)})",
                    f"{make_noop.median:.2f}",
                    f"{make_fraction:.1%}",
                ],
            ],
        )
    )
    print("no-op samples s: " + ", ".join(f"{x:.2f}" for x in make_noop.seconds))
    verdict = "PASS" if make_fraction <= MAKE_NOOP_GOAL else "OVER"
    print(
        f"no-op make build / full make build = {make_fraction:.2%}: {verdict} "
        f"(goal <= {MAKE_NOOP_GOAL:.0%})"
    )
    for problem in problems:
        print(f"INVALID: {problem}")
    print()
    print(
        _table(
            ["to ready (fresh container)", "median s", "samples s"],
            [
                [
                    "restore final image -> admin login",
                    f"{restore.median:.2f}",
                    ", ".join(f"{s:.2f}" for s in restore.seconds),
                ],
                [
                    "cold boot simulator -> SYNO.API.Info",
                    f"{cold.median:.2f}",
                    ", ".join(f"{s:.2f}" for s in cold.seconds),
                ],
            ],
        )
    )
    print(
        f"restore / cold boot: {restore_ratio:.2f} "
        f"(restore is {cold.median / restore.median:.1f}x faster)"
    )
    print()
    print(
        f"final image size: {sizes['before'] / 1e6:.0f} MB before flattening (the final "
        f"checkpoint), {sizes['after'] / 1e6:.0f} MB after; after / before = "
        f"{sizes['after'] / sizes['before']:.2f}"
    )
    return {
        "machine": machine,
        "builds": {
            name: {
                "run_id": r.run_id,
                "seconds": r.seconds,
                "plan": r.plan,
                "image": r.image,
                "stages": [
                    {"name": s.name, "status": s.status, "seconds": s.seconds} for s in r.stages
                ],
            }
            for name, r in builds.items()
        },
        "noop_fraction": round(noop_fraction, 4),
        "noop_goal": NOOP_GOAL,
        "make_full_seconds": round(make_full, 3),
        "make_noop_seconds": [round(x, 3) for x in make_noop.seconds],
        "make_noop_median": round(make_noop.median, 3),
        "make_noop_fraction": round(make_fraction, 4),
        "make_noop_goal": MAKE_NOOP_GOAL,
        "resume_fraction": round(resume_fraction, 4),
        "restore_to_login_seconds": restore.seconds,
        "cold_boot_to_api_seconds": cold.seconds,
        "restore_median": round(restore.median, 3),
        "cold_boot_median": round(cold.median, 3),
        "restore_over_cold_boot": round(restore_ratio, 4),
        "sizes": sizes,
        "problems": problems,
    }


# -- main ----------------------------------------------------------------------------------------


def measure(client: docker.DockerClient, created: Created, samples: int) -> dict[str, Any]:
    bench_id = new_run_id()
    created.run_ids.append(bench_id)  # labels of the sample containers
    work = Path(tempfile.mkdtemp(prefix="vdsm-ci-bench-"))
    created.folders.append(work)
    out_dir = work / "out"
    overrides: dict[str, Any] = {
        "image_repository": REPOSITORY,
        # A knob nothing reads: it enters the start-ready fingerprint, so this benchmark's
        # checkpoints are its own (see the module docstring).
        "env": {"VDSM_CI_BENCHMARK": bench_id},
    }
    builds = {"full": run_build("full build", client, created, overrides, out_dir, no_cache=True)}
    builds["no-op"] = run_build("no-op rebuild", client, created, overrides, out_dir)
    make_full, builds["make full"] = make_build(
        "full make build", out_dir, overrides, work, created, "-p", "no_cache", "True"
    )
    make_noop = Samples("make build no-op")
    for n in range(1, samples + 1):
        seconds, builds["make no-op"] = make_build(
            f"no-op make build {n}", out_dir, overrides, work, created
        )
        make_noop.seconds.append(seconds)
    params_dir = edited_params(work)
    builds["resume"] = run_build(
        "resume after post-wizard edit", client, created, overrides, out_dir, params_dir=params_dir
    )
    full = builds["full"]
    if full.image is None:
        raise BenchmarkError(f"the full build recorded no final image (run {full.run_id})")
    params = load_params(TARGET, overrides)
    accel = full.accelerator or "tcg"
    sim_ref = ensure_sim_image(client).ref
    restore, cold = Samples("restore"), Samples("cold boot")
    for n in range(1, samples + 1):
        try:
            restore.seconds.append(restore_sample(client, full.image, params, accel, bench_id))
            cold.seconds.append(cold_boot_sample(client, sim_ref, params, accel, bench_id))
        except VdsmError as err:
            raise BenchmarkError(f"sample {n}: {err}") from err
        print(
            f"sample {n}: restore to login {restore.seconds[-1]:.2f} s, "
            f"cold boot to API {cold.seconds[-1]:.2f} s",
            flush=True,
        )
    problems = check_builds(out_dir, builds)
    machine = {
        "nproc": os.cpu_count(),
        "accelerator": accel,
        "accelerator_reason": full.accelerator_reason,
        "qemu_version": full.qemu_version,
    }
    return report(machine, builds, restore, cold, problems, make_full, make_noop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--samples", type=int, default=3, help="no-op make build and restore/cold boot samples"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the numbers here")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the builds' progress")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    client = connect()
    created = Created()
    try:
        numbers = measure(client, created, args.samples)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except VdsmError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    finally:
        cleanup(client, created)
        client.close()
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")
        print(f"numbers written to {args.json}")
    return 2 if numbers["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
