"""What a consumer pays for the final simulator image: bytes to pull, seconds to login, to healthy.

    .venv/bin/python benchmarks/consumer_cost.py [--image IMAGE] [--no-push] [--runs 3] \\
        [--json PATH]

Without ``--image`` it builds a final simulator image first: its own (see the last figure),
or with ``--no-push`` the project's (``Build("sim")``: a no-op when it exists, else a resume
from the newest checkpoints or a full build). Then it prints, in one run:

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
  under ``-incoming`` the state loads after that, in QEMU's main loop) -> first login (the
  admin login polled from the host, as a consumer does: state loaded, guest awake, its first
  answer; under TCG the guest's first request after a restore is the slow one: QEMU translates
  again all the code it runs).
  Process start times come from ``/proc/<pid>/stat`` inside the container, on the same kernel
  clock (boot time) as the host's marks; the process names are the simulator's twin of
  virtual-dsm (simulator/vdsm_sim/image/container/entry.sh).

- bytes pushed by a rebuild after a post-wizard edit / image size (on by default without
  ``--image``; ``--no-push`` skips it): the benchmark then builds its own final image (its own
  repository and a knob with its id, as benchmarks/build_resume.py: fingerprints of its own),
  starts Debian's ``docker-registry`` on loopback, pushes the image, rebuilds after the
  post-wizard edit build_resume.py makes (a comment appended to
  ``profiles/dsm-7.2.2/post-wizard.yaml`` in a temporary copy of ``params/``), pushes that
  rebuild's final image to the same repository, and counts the blob bytes each push added to
  the registry's storage. It lists the rebuild's layers: shared with the first push or pushed
  again, with what made each (``docker history``). The other figures are then measured on the
  first of the two images.

The containers it starts carry the benchmark label and are removed; the registry, its storage,
the tags and images of its builds and its temporary folders are removed at the end, also after
a failure, Ctrl-C or SIGTERM (exit status 1 on a failure, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from build_resume import (
    BenchmarkError,
    _died,
    _tail,
    cold_boot_sample,
    edited_params,
    fresh_container,
    run_build,
)
from vdsm_sim.image.build import ensure_sim_image

from vdsmlib.checkpoints.footprint import disk_footprints, storage_files
from vdsmlib.docker.engine import connect
from vdsmlib.docker.images import clean, get_image, image_size, remove_image
from vdsmlib.docker.registry import push
from vdsmlib.errors import VdsmError
from vdsmlib.evidence.record import BuildRecord
from vdsmlib.params import Params, load_params
from vdsmlib.pipeline import Build

POLL = 0.02
#: the benchmark's own repositories: for its final images, and in its registry
IMAGE_REPOSITORY = "vdsm-ci-bench/consumer"
PUSH_REPOSITORY = "vdsm-ci-bench/consumer"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
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
    ("state load + guest wake + first login", "first login"),
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
            # the login itself, as a consumer polls: no other request before it
            try:
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


# -- bytes a rebuild after a post-wizard edit pushes -------------------------------------------


@dataclass
class Registry:
    """Debian's docker-registry serving on loopback (Docker allows plain HTTP there)."""

    address: str
    storage: Path
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Pushed:
    """One push of a final image through the benchmark's registry."""

    image: str
    ref: str
    digest: str
    added: dict[str, int]  # blob digest -> bytes: the blobs this push added to the storage
    layers: list[tuple[str, int]]  # the manifest's layers in order: (digest, compressed bytes)
    config: str  # the config blob's digest
    history: list[tuple[str, int]]  # per layer: (what made it, uncompressed bytes)

    @property
    def added_bytes(self) -> int:
        return sum(self.added.values())


@dataclass
class Created:
    """What this benchmark made, so that cleanup finds it also after a failure."""

    run_ids: list[str] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)  # tags it put on images
    registry: Registry | None = None


def start_registry(work: Path) -> Registry:
    """A registry on 127.0.0.1 storing into ``work``, as tests/integration/test_registry.py."""
    exe = shutil.which("docker-registry")
    if exe is None:
        raise BenchmarkError(
            "docker-registry not found: apt-get install docker-registry (or pass --no-push)"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = work / "registry.yml"
    storage = work / "registry"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {storage}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    log = work / "registry.log"
    with log.open("w") as out:
        proc = subprocess.Popen([exe, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    registry = Registry(f"127.0.0.1:{port}", storage, proc, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://{registry.address}/v2/", timeout=2).status_code == 200:
                return registry
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_registry(registry)
            raise BenchmarkError(f"docker-registry did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def stop_registry(registry: Registry) -> None:
    if registry.proc.poll() is None:
        registry.proc.terminate()
        try:
            registry.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            registry.proc.kill()
            registry.proc.wait()


def stored_blobs(storage: Path) -> dict[str, int]:
    """Every blob in the registry's storage (layers, configs, manifests): digest -> bytes."""
    root = storage / "docker" / "registry" / "v2" / "blobs"
    return {
        f"{p.parents[2].name}:{p.parent.name}": p.stat().st_size for p in root.glob("*/*/*/data")
    }


def _get(registry: Registry, path: str, accept: str = "") -> Any:
    url = f"http://{registry.address}/v2/{PUSH_REPOSITORY}/{path}"
    answer = requests.get(url, headers={"Accept": accept} if accept else {}, timeout=30)
    if answer.status_code != 200:
        raise BenchmarkError(f"GET {url}: {answer.status_code} {answer.text[:200]}")
    return answer.json()


def _what(created_by: str) -> str:
    text = created_by.removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()
    return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1", " ".join(text.split()))


def push_measured(
    client: docker.DockerClient, registry: Registry, image: str, tag: str, created: Created
) -> Pushed:
    """Push ``image`` to the registry as ``tag``; what the push added, read from its storage."""
    remote = f"{registry.address}/{PUSH_REPOSITORY}:{tag}"
    try:
        local = client.images.get(image)
        created.refs.append(remote)
        local.tag(remote)
    except docker.errors.DockerException as err:
        raise BenchmarkError(f"cannot tag {image} as {remote}: {err}") from err
    before = stored_blobs(registry.storage)
    pushed = push(client, remote)
    after = stored_blobs(registry.storage)
    manifest = _get(registry, f"manifests/{tag}", MANIFEST_V2)
    layers = [(str(x["digest"]), int(x["size"])) for x in manifest["layers"]]
    config_digest = str(manifest["config"]["digest"])
    config = _get(registry, f"blobs/{config_digest}")
    # `docker history` (newest first) has one row per history entry of the config, whose
    # entries that made a layer are those without empty_layer, in the order of the layers
    rows = list(reversed(client.api.history(local.id)))
    entries = config.get("history") or []
    history = [
        (_what(str(row.get("CreatedBy", ""))), int(row.get("Size", 0)))
        for entry, row in zip(entries, rows, strict=False)
        if not entry.get("empty_layer")
    ]
    if len(entries) != len(rows) or len(history) != len(layers):
        history = [("?", 0)] * len(layers)
    return Pushed(
        image=image,
        ref=remote,
        digest=pushed.digest,
        added={d: s for d, s in after.items() if d not in before},
        layers=layers,
        config=config_digest,
        history=history,
    )


def push_rebuild(
    client: docker.DockerClient, created: Created, bench_id: str
) -> tuple[str, dict[str, Any]]:
    """Build the final image, push it, rebuild after a post-wizard edit, push that; report.

    Both builds are this benchmark's own (its repository, a knob with its id: fingerprints of
    their own), so it never reuses, replaces or removes another build's images. Returns the
    first build's final image and the figures.
    """
    work = Path(tempfile.mkdtemp(prefix="vdsm-ci-consumer-"))
    created.folders.append(work)
    out_dir = work / "out"
    overrides: dict[str, Any] = {
        "image_repository": IMAGE_REPOSITORY,
        # A knob nothing reads: it enters the start-ready fingerprint (see build_resume.py).
        "env": {"VDSM_CI_BENCHMARK": bench_id},
    }
    first = run_build("build", client, created, overrides, out_dir)
    created.registry = start_registry(work)
    one = push_measured(client, created.registry, _image_of(first), "first", created)
    print(f"first push: {one.added_bytes / 1e6:.1f} MB added to the registry", flush=True)
    edited = edited_params(work)
    second = run_build(
        "rebuild after post-wizard edit",
        client,
        created,
        overrides,
        out_dir,
        params_dir=edited,
    )
    statuses = {s.name: s.status for s in second.stages}
    two = push_measured(client, created.registry, _image_of(second), "rebuild", created)
    print(f"second push: {two.added_bytes / 1e6:.1f} MB added to the registry", flush=True)
    got = get_image(client, _image_of(second))
    assert got is not None
    layers: list[dict[str, Any]] = []
    for (digest, size), (what, raw) in zip(two.layers, two.history, strict=True):
        layers.append(
            {
                "digest": digest,
                "compressed": size,
                "uncompressed": raw,
                "pushed": digest in two.added,
                "in_first": digest in dict(one.layers),
                "what": what,
            }
        )
    figures = {
        "first_run": first.run_id,
        "rebuild_run": second.run_id,
        "rebuild_plan": second.plan,
        "rebuild_statuses": statuses,
        "image": _image_of(second),
        "image_size": image_size(got),
        "first_push_bytes": one.added_bytes,
        "first_push_layers": sum(s for _, s in one.layers),
        "rebuild_push_bytes": two.added_bytes,
        "rebuild_push_layers": sum(x["compressed"] for x in layers if x["pushed"]),
        "rebuild_push_other": {d: s for d, s in two.added.items() if d not in dict(two.layers)},
        "layers": layers,
    }
    return _image_of(first), figures


def _image_of(record: BuildRecord) -> str:
    if not record.image:
        raise BenchmarkError(f"the build made no image: {record.error}")
    return record.image


def print_push(f: dict[str, Any]) -> None:
    size, first, again = f["image_size"], f["first_push_bytes"], f["rebuild_push_bytes"]
    print(
        f"\nrebuild after a post-wizard edit (run {f['rebuild_run']}: {f['rebuild_plan']})"
        f"\nfirst push of the final image: {first / 1e6:.1f} MB compressed added to the registry"
        f" (layers {f['first_push_layers'] / 1e6:.1f} MB)"
    )
    other = sum(f["rebuild_push_other"].values())
    print(
        f"bytes pushed by a rebuild after a post-wizard edit / image size: {again / 1e6:.1f} MB"
        f" / {size / 1e6:.1f} MB = {again / size:.3f}; of the first push (compressed): "
        f"{again / first:.3f}  (layers {f['rebuild_push_layers'] / 1e6:.1f} MB, config and "
        f"manifest {other / 1e3:.1f} kB)"
    )
    statuses = f["rebuild_statuses"]
    if statuses.get("boot") not in ("resumed", "skipped") or statuses.get("post-wizard") != "ran":
        print(
            f"INVALID: the rebuild did not resume from start-ready (boot {statuses.get('boot')},"
            f" post-wizard {statuses.get('post-wizard')}): was a file edited meanwhile?"
        )
    print("the rebuild's layers (compressed digest, compressed MB, uncompressed MB, what made it)")
    for x in f["layers"]:
        state = "PUSHED" if x["pushed"] else "shared" if x["in_first"] else "existed"
        print(
            f"  {state:<7} {x['digest'][7:19]} {x['compressed'] / 1e6:9.1f} "
            f"{x['uncompressed'] / 1e6:9.1f}  {x['what'][:90]}"
        )


def cleanup(client: docker.DockerClient, created: Created) -> None:
    """Remove the registry, the tags and images of this benchmark's runs, its folders."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if created.registry is not None:
            stop_registry(created.registry)
        if not created.run_ids and not created.refs:
            return
        print("cleaning up ...", flush=True)
        try:
            refs = [*created.refs]
            for image in client.images.list(name=IMAGE_REPOSITORY):
                refs += image.tags
            if created.registry is not None:
                mine = f"{created.registry.address}/"
                for image in client.images.list():
                    refs += [r for r in image.attrs.get("RepoDigests") or [] if r.startswith(mine)]
            for ref in refs:
                remove_image(client, ref)
        except (VdsmError, docker.errors.DockerException) as err:
            print(f"  could not remove the benchmark's tags: {err}", file=sys.stderr)
        for run_id in created.run_ids:
            try:
                clean(client, run_id=run_id, kinds=("checkpoint", "base", "final"))
            except (VdsmError, docker.errors.DockerException) as err:
                print(f"  could not clean run {run_id}: {err}", file=sys.stderr)
        for folder in created.folders:
            shutil.rmtree(folder, ignore_errors=True)
        for run_id in created.run_ids:  # the QMP folder of a kept VM (see build_resume.py)
            for folder in Path(tempfile.gettempdir()).glob(f"vdsm-ci-{run_id[-4:]}-*"):
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--image", help="the final image (default: build the simulator's)")
    parser.add_argument(
        "--push",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bytes a rebuild after a post-wizard edit pushes (default: on without --image)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.push is None:
        args.push = args.image is None
    if args.push and args.image:
        parser.error("--push builds its own final image: drop --image, or add --no-push")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    signal.signal(signal.SIGTERM, _terminated)
    client = connect()
    created = Created()
    try:
        return measure(args, client, created)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except VdsmError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    finally:
        cleanup(client, created)
        client.close()


def measure(args: argparse.Namespace, client: docker.DockerClient, created: Created) -> int:
    params = load_params("sim")
    bench_id = f"consumer-{uuid.uuid4().hex[:8]}"
    created.run_ids.append(bench_id)  # labels of the sample containers
    image = args.image
    pushes: dict[str, Any] | None = None
    if args.push:
        image, pushes = push_rebuild(client, created, bench_id)
        print(f"final image {image}")
    elif image is None:
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
    if pushes is not None:
        print_push(pushes)
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
                    "push": pushes,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
