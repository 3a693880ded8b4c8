"""Checkpoint formats on the final simulator image: savevm in qcow2 against a migration to a file.

    .venv/bin/python benchmarks/checkpoint_formats.py --image IMAGE [--runs 2]

Containers of the final image restore ``final`` (``-loadvm``), then, through QEMU's monitor,
migrate the VM to a file, each one way: a plain migration stream, and with the ``mapped-ram``
capability (QEMU 9.0 and later: each RAM page at a fixed offset of a sparse file, zero pages
left as holes). It prints each state's bytes (apparent, allocated on disk, gzip -1 as a stand-in
for what a registry stores compressed) against final's VM state in qcow2, and the seconds of
each save. Then it starts fresh containers of the image that restore each way, ``-loadvm final``
and ``-incoming defer`` + ``migrate_incoming file:...`` (the same disks; the capability set as
when saved), and prints the seconds from ``docker run`` to the first admin login.

Every restore run starts the base's own entry point (``tini -s /run/entry.sh``), the incoming
ones with ``ARGUMENTS=-incoming defer``, so the image's restore check (written for ``-loadvm
final``) runs in none of them; the incoming runs' time includes one ``docker exec`` that sends
the monitor commands. The state
files sit in a host folder bind-mounted into the containers (a Docker layer would store the
mapped-ram file's holes as zeros: its apparent size is what an image would carry). Removes its
containers and files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import requests
from build_resume import BenchmarkError, _tail

from vdsmlib.docker import labels as L
from vdsmlib.docker.engine import connect
from vdsmlib.params import load_params

#: send HMP commands (argv[1:]) to the simulator twin's monitor (telnet localhost:7100, as
#: virtual-dsm 7.41 src/power.sh opens it); print each answer
HMP = r"""
import re, socket, sys, time
s = socket.socket(socket.AF_INET)
for _ in range(600):
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


def hmp(container: Any, *commands: str) -> str:
    code, out = container.exec_run(["python3", "-c", HMP, *commands])
    text = out.decode(errors="replace")
    if code != 0:
        raise BenchmarkError(f"monitor commands {commands} failed: {text}")
    return text


def wait_login(url: str, user: str, password: str, container: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    login = f"{url}/webapi/auth.cgi?api=SYNO.API.Auth&version=3&method=login"
    while time.monotonic() < deadline:
        try:
            answer = requests.get(
                login, params={"account": user, "passwd": password, "format": "sid"}, timeout=5
            ).json()
            if answer.get("success"):
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.02)
    raise BenchmarkError(f"no login within {timeout} s:\n{_tail(container)}")


def start(client: docker.DockerClient, image: str, states: Path, **extra: Any) -> tuple[Any, str]:
    params = load_params("sim")
    container = client.containers.run(
        image,
        detach=True,
        ports={"5000/tcp": ("127.0.0.1", None)},
        devices=[f"{d}:{d}" for d in params.run.devices],
        cap_add=list(params.run.cap_add) or None,
        volumes={str(states): {"bind": "/states", "mode": "rw"}},
        labels=L.owner_labels("benchmark", None),
        **extra,
    )
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"]
    return container, f"http://127.0.0.1:{port}"


def file_sizes(path: Path) -> dict[str, int]:
    gz = subprocess.run(
        ["bash", "-c", f"gzip -1 -c {path} | wc -c"], capture_output=True, text=True, check=True
    )
    return {
        "apparent": path.stat().st_size,
        "allocated": path.stat().st_blocks * 512,
        "gzip": int(gz.stdout.strip()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="the final simulator image")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    client = connect()
    params = load_params("sim")
    user, password = params.admin.user, params.admin.password
    states = Path(tempfile.mkdtemp(prefix=f"vdsm-ci-formats-{uuid.uuid4().hex[:6]}-"))
    states.chmod(0o777)
    entry = {"entrypoint": ["/usr/bin/tini", "-s", "/run/entry.sh"]}
    results: dict[str, Any] = {"image": args.image, "ram": params.vm.ram}
    made: list[Any] = []
    try:
        saves = {}
        for name, capability in (("mapped-ram", "on"), ("plain", "off")):
            # one VM per save: after a migration the VM's disks are inactive (postmigrate)
            container, url = start(client, args.image, states)
            made.append(container)
            wait_login(url, user, password, container, params.timeouts.restore)
            started = time.monotonic()
            hmp(
                container,
                f"migrate_set_capability mapped-ram {capability}",
                f"migrate file:/states/{name}.bin",
                "wait migrate",
            )
            saves[name] = time.monotonic() - started
            container.remove(force=True)
        info = client.containers.run(
            args.image,
            ["-c", "qemu-img info --output=json -U /storage/*.boot.img"],
            entrypoint="/bin/bash",
            remove=True,
        ).decode()
        savevm = max(s["vm-state-size"] for s in json.loads(info).get("snapshots", []))
        sizes = {name: file_sizes(states / f"{name}.bin") for name in saves}
        results.update(saves=saves, sizes=sizes, savevm_state=savevm)
        restores: dict[str, list[float]] = {"savevm (-loadvm final)": []}
        restores.update({f"file, {name}": [] for name in saves})
        for _ in range(args.runs):
            started = time.monotonic()
            container, url = start(client, args.image, states, **entry)
            made.append(container)
            wait_login(url, user, password, container, params.timeouts.restore)
            restores["savevm (-loadvm final)"].append(time.monotonic() - started)
            container.remove(force=True)
            for name, capability in (("mapped-ram", "on"), ("plain", "off")):
                started = time.monotonic()
                container, url = start(
                    client,
                    args.image,
                    states,
                    environment={"ARGUMENTS": "-incoming defer"},
                    **entry,
                )
                made.append(container)
                hmp(
                    container,
                    f"migrate_set_capability mapped-ram {capability}",
                    f"migrate_incoming file:/states/{name}.bin",
                )
                wait_login(url, user, password, container, params.timeouts.restore)
                restores[f"file, {name}"].append(time.monotonic() - started)
                container.remove(force=True)
        results["restores"] = restores
    finally:
        for container in made:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        shutil.rmtree(states, ignore_errors=True)
    mb = 1e6
    print(f"image {args.image}, guest RAM {params.vm.ram}")
    print(f"{'state':<28}{'apparent MB':>12}{'on disk MB':>12}{'gzip -1 MB':>12}{'save s':>8}")
    print(f"{'savevm in qcow2 (final)':<28}{savevm / mb:>12.1f}{savevm / mb:>12.1f}{'':>12}{'':>8}")
    for name, size in results["sizes"].items():
        print(
            f"{'migration file, ' + name:<28}{size['apparent'] / mb:>12.1f}"
            f"{size['allocated'] / mb:>12.1f}{size['gzip'] / mb:>12.1f}"
            f"{results['saves'][name]:>8.2f}"
        )
    print("restore to first login (docker run -> login), seconds: median (samples)")
    for name, seconds in results["restores"].items():
        print(
            f"  {name:<26}{statistics.median(seconds):>6.2f}  "
            f"({', '.join(f'{s:.2f}' for s in seconds)})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
