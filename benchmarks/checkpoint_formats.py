"""Checkpoint formats end to end: savevm in qcow2 against a migration stream in a file.

    .venv/bin/python benchmarks/checkpoint_formats.py [--image IMAGE] [--image-2g IMAGE] \\
        [--runs 2] [--no-2g] [--json PATH]

Two guests: the simulator's final image as built (its RAM, 512 MiB), and a final image built
with ``vm.ram: 2G`` whose guest memory is filled before the checkpoint is taken. The simulator
keeps no data in RAM by itself (its resident set is about 150 MB), while real DSM's is large, so
the 2 GB build sets the simulator knob ``SIM_VOLUME_ROOT=/``: File Station's shared folders then
live in the guest's root file system, a tmpfs in guest RAM, and ``--fill-mib`` MiB of random bytes
are uploaded through File Station's Web API (``SYNO.FileStation.Upload``) into ``/ci`` before the
checkpoint. The guest's own memory figures (``SYNO.Core.System.Utilization``) are printed before
and after, and the mapped-ram file's allocated bytes count the non-zero pages QEMU wrote.

For each guest, one VM restored from the image's ``final`` (``-incoming
file:/storage/final.state``, the disks writable) takes every checkpoint from the same paused
moment: ``stop``, ``savevm bench`` (the disks then hold one VM state), then QEMU quits. The
disks become the savevm image. A VM restored from that image then, paused, migrates to a file
twice (a plain stream, then the ``mapped-ram`` capability: QEMU 9.0+ writes each page at a
fixed offset of a sparse file, zero pages left as holes); its disks, compacted without internal
snapshots (``qemu-img convert``), plus the file make the two migration images. Each image is one
layer over the final image (``COPY storage/ /storage/``), pushed to a local registry
(Debian's ``docker-registry`` on loopback, as the integration tests run it) after the final image
itself, removed and pulled back (download and extraction), then restored ``--runs`` times from
``docker run`` (the base's entry point ``tini -s /run/entry.sh``, ``ARGUMENTS=-loadvm bench`` or
``-incoming defer`` then ``migrate_incoming`` through the monitor) to the first admin login.

First touch: right after that login, the same requests twice, timed each (the 2 GB guest
downloads the uploaded file, reading all of the filled memory; the 512 MiB guest sends ten rounds of
utilization and share list). Every format here loads all of RAM before the guest runs, so the
first round's extra is TCG's code cache and the guest's own caches warming, not page faults of a
lazy load; a lazy format (``x-ignore-shared`` over a file-backed RAM) is not measured (see
benchmarks/README.md). Removes its containers, images, registry and files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import requests
from build_resume import BenchmarkError, _died, _tail

from vdsmlib.docker import labels as L
from vdsmlib.docker.engine import connect
from vdsmlib.params import Params, load_params
from vdsmlib.pipeline.run import Build

#: send HMP commands (argv[1:]) to the simulator twin's monitor (telnet localhost:7100, as
#: virtual-dsm 7.41 src/power.sh opens it); print each answer
HMP = r"""
import re, socket, sys, time
s = socket.socket(socket.AF_INET)
for _ in range(1500):
    try:
        s.connect(("127.0.0.1", 7100))
        break
    except OSError:
        time.sleep(0.02)
def answer():
    data = b""
    while not data.endswith(b"(qemu) "):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")
answer()
for command in sys.argv[1:]:
    if command == "wait migrate":
        while True:
            s.sendall(b"info migrate\n")
            text = answer()
            if re.search(r"status:\s*(completed|failed)", text, re.I):
                print(text)
                break
            time.sleep(0.05)
        continue
    s.sendall(command.encode() + b"\n")
    print(answer())
"""

ENTRY = {"entrypoint": ["/usr/bin/tini", "-s", "/run/entry.sh"]}
#: the file formats: name -> the mapped-ram capability
FILE_FORMATS = {"plain": "off", "mapped-ram": "on"}
FORMATS = ("savevm", *FILE_FORMATS)
#: the final image's VM state (vdsmlib.pipeline.flatten: ``-incoming file:/storage/final.state``)
FINAL_STATE = "/storage/final.state"
MIB = 1 << 20


def hmp(container: Any, *commands: str) -> str:
    code, out = container.exec_run(["python3", "-c", HMP, *commands])
    text = out.decode(errors="replace")
    if code != 0 or "Error:" in text:
        raise BenchmarkError(f"monitor commands {commands} failed: {text}")
    return text


def api(url: str, sid: str, name: str, method: str, version: int, **params: Any) -> Any:
    answer = requests.get(
        f"{url}/webapi/entry.cgi",
        params={"api": name, "method": method, "version": version, "_sid": sid, **params},
        timeout=120,
    ).json()
    if not answer.get("success"):
        raise BenchmarkError(f"{name} {method}: {answer}")
    return answer.get("data")


def wait_login(url: str, params: Params, container: Any, timeout: float) -> str:
    """The first successful admin login's sid."""
    deadline = time.monotonic() + timeout
    login = f"{url}/webapi/auth.cgi?api=SYNO.API.Auth&version=3&method=login"
    while time.monotonic() < deadline:
        try:
            answer = requests.get(
                login,
                params={
                    "account": params.admin.user,
                    "passwd": params.admin.password,
                    "format": "sid",
                },
                timeout=5,
            ).json()
            if answer.get("success"):
                return str(answer["data"]["sid"])
        except (requests.RequestException, ValueError):
            pass
        if (why := _died(container)) is not None:
            raise BenchmarkError(f"the container stopped ({why}):\n{_tail(container)}")
        time.sleep(0.02)
    raise BenchmarkError(f"no login within {timeout} s:\n{_tail(container)}")


def start(client: docker.DockerClient, image: str, params: Params, **extra: Any) -> tuple[Any, str]:
    container = client.containers.run(
        image,
        detach=True,
        ports={"5000/tcp": ("127.0.0.1", None)},
        devices=[f"{d}:{d}" for d in params.run.devices],
        cap_add=list(params.run.cap_add) or None,
        labels=L.owner_labels("benchmark", None),
        **extra,
    )
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"]
    return container, f"http://127.0.0.1:{port}"


def quit_and_copy_storage(container: Any, dest: Path) -> None:
    """Quit QEMU (the VM is paused), wait for the container to stop, copy /storage out."""
    with contextlib.suppress(BenchmarkError, docker.errors.APIError):
        hmp(container, "quit")  # the monitor closes with QEMU: no prompt comes back
    with contextlib.suppress(requests.RequestException):
        container.wait(timeout=120)
    stream, _ = container.get_archive("/storage")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        tar.extractall(dest, filter="tar")


def memory(url: str, sid: str) -> str:
    mem = api(url, sid, "SYNO.Core.System.Utilization", "get", 1)["memory"]
    total, avail = int(mem["total_real"]), int(mem["avail_real"])
    return f"{(total - avail) / 1024:.0f} MiB used of {total / 1024:.0f} MiB"


def fill(url: str, sid: str, path: Path) -> float:
    started = time.monotonic()
    with path.open("rb") as f:
        answer = requests.post(
            f"{url}/webapi/entry.cgi",
            params={"api": "SYNO.FileStation.Upload", "version": "2", "method": "upload"}
            | {"_sid": sid},
            files=[
                ("path", (None, "/ci")),
                ("overwrite", (None, "true")),
                ("file", (path.name, f)),
            ],
            timeout=1800,
        ).json()
    if not answer.get("success"):
        raise BenchmarkError(f"the fill upload failed: {answer} (the guest's tmpfs is full?)")
    return time.monotonic() - started


def touch(url: str, sid: str, filled: str | None) -> float:
    """Seconds of the requests that read the guest's memory (see the module's docstring)."""
    started = time.monotonic()
    if filled:
        with requests.get(
            f"{url}/webapi/entry.cgi",
            params={"api": "SYNO.FileStation.Download", "version": 2, "method": "download"}
            | {"path": f"/ci/{filled}", "mode": "download", "_sid": sid},
            stream=True,
            timeout=600,
        ) as answer:
            answer.raise_for_status()
            got = sum(len(chunk) for chunk in answer.iter_content(1 << 20))
        if got < MIB:
            raise BenchmarkError(f"the download of /ci/{filled} returned {got} bytes")
    else:
        for _ in range(10):
            api(url, sid, "SYNO.Core.System.Utilization", "get", 1)
            api(url, sid, "SYNO.FileStation.List", "list_share", 2)
    return time.monotonic() - started


class Registry:
    """Debian's docker-registry on 127.0.0.1 (Docker pushes plain HTTP to loopback)."""

    def __init__(self, root: Path) -> None:
        exe = shutil.which("docker-registry")
        if exe is None:
            raise BenchmarkError("docker-registry not found: apt-get install docker-registry")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
            f"http: {{addr: '{self.address}'}}\n"
        )
        self.proc = subprocess.Popen(
            [exe, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        for _ in range(300):
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://{self.address}/v2/", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        self.proc.terminate()
        raise BenchmarkError("docker-registry did not answer within 30 s")

    def top_layer(self, repo: str, tag: str) -> int:
        """Compressed bytes of the image's top layer, as the registry stores it."""
        manifest = requests.get(
            f"http://{self.address}/v2/{repo}/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=10,
        ).json()
        return int(manifest["layers"][-1]["size"])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def docker_cli(*args: str) -> float:
    started = time.monotonic()
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchmarkError(f"docker {' '.join(args)}: {done.stderr.strip()[-400:]}")
    return time.monotonic() - started


@dataclass
class FormatResult:
    state_apparent: int = 0
    state_allocated: int = 0
    save: float = 0.0
    layer: int = 0
    layer_compressed: int = 0
    push: float = 0.0
    pull: float = 0.0
    restores: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    again: list[float] = field(default_factory=list)


@dataclass
class Case:
    label: str
    image: str
    ram: str
    fill_mib: int
    memory: list[str] = field(default_factory=list)
    formats: dict[str, FormatResult] = field(default_factory=dict)


def measure(
    client: docker.DockerClient,
    case: Case,
    params: Params,
    work: Path,
    registry: Registry,
    runs: int,
) -> None:
    tag = uuid.uuid4().hex[:8]
    repo = "vdsm-ci-bench/formats"
    states = work / "states"
    states.mkdir(mode=0o777)
    states.chmod(0o777)
    made: list[Any] = []
    images: list[str] = []
    timeout = params.timeouts.restore * 4
    results = {name: FormatResult() for name in FORMATS}
    case.formats = results
    fill_name = None
    try:
        # 1. one paused moment: savevm bench on a VM restored from final (filled first)
        container, url = start(
            client,
            case.image,
            params,
            environment={"ARGUMENTS": f"-incoming file:{FINAL_STATE}"},
            **ENTRY,
        )
        made.append(container)
        sid = wait_login(url, params, container, timeout)
        case.memory.append(f"after restore: {memory(url, sid)}")
        if case.fill_mib:
            data = work / "fill.bin"
            with data.open("wb") as f:
                for _ in range(case.fill_mib):
                    f.write(os.urandom(MIB))
            seconds = fill(url, sid, data)
            data.unlink()
            fill_name = data.name
            case.memory.append(f"after {case.fill_mib} MiB upload ({seconds:.0f} s): "
                               f"{memory(url, sid)}")  # fmt: skip
        hmp(container, "stop")
        started = time.monotonic()
        hmp(container, "savevm bench")
        results["savevm"].save = time.monotonic() - started
        contexts = {name: work / name for name in FORMATS}
        quit_and_copy_storage(container, contexts["savevm"])
        container.remove(force=True)
        # the final image's own state is no part of any format's layer (it stays below, in the
        # final image, which is pushed first)
        (contexts["savevm"] / "storage" / Path(FINAL_STATE).name).unlink(missing_ok=True)
        info = subprocess.run(
            ["qemu-img", "info", "--output=json"]
            + [str(p) for p in (contexts["savevm"] / "storage").glob("*.boot.img")],
            capture_output=True,
            text=True,
            check=True,
        )
        state = max(s["vm-state-size"] for s in json.loads(info.stdout).get("snapshots", []))
        results["savevm"].state_apparent = results["savevm"].state_allocated = state
        # 2. the savevm image; from it, paused, the two migrations to files
        builds = {
            "savevm": "FROM {base}\nCOPY storage/ /storage/\n",
            **{name: "FROM {base}\nCOPY storage/ /storage/\n" for name in FILE_FORMATS},
        }
        local = {name: f"{repo}:{name}-{case.ram}-{tag}" for name in FORMATS}
        (contexts["savevm"] / "Dockerfile").write_text(builds["savevm"].format(base=case.image))
        docker_cli("build", "-q", "-t", local["savevm"], str(contexts["savevm"]))
        images.append(local["savevm"])
        for name, capability in FILE_FORMATS.items():
            container, url = start(
                client,
                local["savevm"],
                params,
                environment={"ARGUMENTS": "-loadvm bench"},
                volumes={str(states): {"bind": "/states", "mode": "rw"}},
                **ENTRY,
            )
            made.append(container)
            wait_login(url, params, container, timeout)
            # not paused first: the stream records the run state, and a paused source restores
            # paused; QEMU stops the VM itself when the migration completes
            started = time.monotonic()
            hmp(
                container,
                f"migrate_set_capability mapped-ram {capability}",
                f"migrate file:/states/{name}.bin",
                "wait migrate",
            )
            results[name].save = time.monotonic() - started
            raw = work / f"{name}-raw"
            quit_and_copy_storage(container, raw)
            container.remove(force=True)
            out = contexts[name] / "storage"
            out.mkdir(parents=True)
            for disk in (raw / "storage").iterdir():
                if disk.name == Path(FINAL_STATE).name:
                    continue
                if disk.suffix in (".img", ".qcow2"):
                    subprocess.run(
                        ["qemu-img", "convert", "-O", "qcow2", str(disk), str(out / disk.name)],
                        check=True,
                    )
                else:
                    shutil.copy2(disk, out / disk.name)
            shutil.rmtree(raw)
            shutil.move(states / f"{name}.bin", out / "state.bin")
            st = (out / "state.bin").stat()
            results[name].state_apparent, results[name].state_allocated = (
                st.st_size,
                st.st_blocks * 512,
            )
            (contexts[name] / "Dockerfile").write_text(builds[name].format(base=case.image))
            docker_cli("build", "-q", "-t", local[name], str(contexts[name]))
            images.append(local[name])
        for context in contexts.values():
            shutil.rmtree(context)
        # 3. push after the final image (its layers are then the registry's), remove, pull
        remote_base = f"{registry.address}/{repo}:final-{case.ram}-{tag}"
        docker_cli("tag", case.image, remote_base)
        docker_cli("push", remote_base)
        docker_cli("rmi", remote_base)
        remote = {}
        for name in FORMATS:
            remote[name] = f"{registry.address}/{local[name]}"
            results[name].layer = int(client.api.history(local[name])[0]["Size"])
            docker_cli("tag", local[name], remote[name])
            results[name].push = docker_cli("push", remote[name])
            results[name].layer_compressed = registry.top_layer(repo, remote[name].split(":")[-1])
            docker_cli("rmi", local[name], remote[name])
            images.remove(local[name])
            results[name].pull = docker_cli("pull", remote[name])
            images.append(remote[name])
            print(f"{case.label} {name}: {results[name]}", flush=True)
        # 4. restore to first login, then first touch
        for _ in range(runs):
            for name in FORMATS:
                incoming = name in FILE_FORMATS
                arguments = "-incoming defer" if incoming else "-loadvm bench"
                started = time.monotonic()
                container, url = start(
                    client, remote[name], params, environment={"ARGUMENTS": arguments}, **ENTRY
                )
                made.append(container)
                if incoming:
                    hmp(
                        container,
                        f"migrate_set_capability mapped-ram {FILE_FORMATS[name]}",
                        "migrate_incoming file:/storage/state.bin",
                    )
                sid = wait_login(url, params, container, timeout)
                results[name].restores.append(time.monotonic() - started)
                results[name].first.append(touch(url, sid, fill_name))
                results[name].again.append(touch(url, sid, fill_name))
                container.remove(force=True)
                print(
                    f"{case.label} {name}: login {results[name].restores[-1]:.2f} s, touch"
                    f" {results[name].first[-1]:.2f}/{results[name].again[-1]:.2f} s",
                    flush=True,
                )
    finally:
        for container in made:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for image in images:
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(image, force=True)


def built_final(client: docker.DockerClient, overrides: dict[str, Any]) -> str:
    record = asyncio.run(Build("sim", overrides, executor="inline", client=client).run())
    if not record.image:
        raise BenchmarkError(f"the build made no image: {record.error}")
    print(f"final image {record.image} ({record.plan}, {record.seconds:.0f} s)", flush=True)
    return record.image


def report(cases: list[Case]) -> None:
    mb = 1e6
    med = statistics.median
    print()
    head = (
        f"{'guest RAM':<12}{'format':<12}{'state MB':>9}{'on disk':>9}{'layer MB':>9}"
        f"{'gz MB':>8}{'save s':>8}{'push s':>8}{'pull s':>8}{'login s':>9}"
        f"{'touch 1st':>10}{'again':>7}"
    )
    print(head)
    for case in cases:
        for name, r in case.formats.items():
            if not r.restores:
                continue
            print(
                f"{case.label:<12}{name:<12}{r.state_apparent / mb:>9.0f}"
                f"{r.state_allocated / mb:>9.0f}{r.layer / mb:>9.0f}"
                f"{r.layer_compressed / mb:>8.0f}{r.save:>8.1f}{r.push:>8.1f}{r.pull:>8.1f}"
                f"{med(r.restores):>9.2f}{med(r.first):>10.2f}{med(r.again):>7.2f}"
            )
    print()
    for case in cases:
        print(f"{case.label} ({case.image}):")
        for line in case.memory:
            print(f"  guest memory {line}")
        for name, r in case.formats.items():
            samples = ", ".join(f"{s:.2f}" for s in r.restores)
            touches = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(r.first, r.again, strict=True))
            print(f"  {name:<11} login s: {samples}; touch 1st/again s: {touches}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="the simulator's final image (default: build it)")
    parser.add_argument(
        "--image-2g",
        help="a final image built with vm.ram 2G and SIM_VOLUME_ROOT=/ (default: build)",
    )
    parser.add_argument(
        "--fill-mib", type=int, default=850, help="MiB uploaded into the 2 GB guest"
    )
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--no-2g", action="store_true", help="only the simulator's RAM (no 2 GB image)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    # a TERM cleans up as an interrupt does (containers, images, registry, files)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    client = connect()
    params = load_params("sim")
    params_2g = load_params("sim", overrides={"vm": {"ram": "2G"}})
    image = args.image or built_final(client, {})
    cases = [Case(f"{params.vm.ram} (sim)", image, params.vm.ram, 0)]
    if not args.no_2g:
        image_2g = args.image_2g or built_final(
            client, {"vm": {"ram": "2G"}, "sim_knobs": {"SIM_VOLUME_ROOT": "/"}}
        )
        cases.append(Case("2G, filled", image_2g, "2G", args.fill_mib))
    work = Path(tempfile.mkdtemp(prefix=f"vdsm-ci-formats-{uuid.uuid4().hex[:6]}-"))
    registry = Registry(work)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        for case, case_params in zip(cases, (params, params_2g)[: len(cases)], strict=True):
            case_work = work / case.ram
            case_work.mkdir()
            measure(client, case, case_params, case_work, registry, args.runs)
            print(f"{case.label} done", flush=True)
    finally:
        registry.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"started {started}, load average now {os.getloadavg()[0]:.1f}")
    report(cases)
    if args.json:
        args.json.write_text(json.dumps([asdict(case) for case in cases], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
