"""How fast does the DSM simulator boot under TCG?

    .venv/bin/python benchmarks/sim_boot.py [--runs 3] [--kvm]

Builds (or reuses) the simulator image, then per run starts a fresh container with
SIM_INSTALL_DELAY=0 and the run options of params/sim.yaml (NAT: tun + NET_ADMIN) and prints
the seconds from `docker run` to: the wait page on port 5000 (shown only while the simulator
installs, so a fast install may never show it: "nan"), the guest's first HTTP answer
(SYNO.API.Info), and the DSM welcome page's Start button in the HTML. Goal: guest ready in
under 20 s under TCG. Removes its containers.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from typing import Any

import docker
import docker.errors
import requests
from vdsm_sim.image.build import ensure_sim_image

from vdsmlib.params import load_params

INFO_QUERY = "/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query&query=SYNO.API.Auth"
WELCOME_BUTTON = 'class="welcome-page-btn"'
POLL = 0.05


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


def one_run(client: docker.DockerClient, ref: str, kvm: bool, timeout: float) -> dict[str, float]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    marks: dict[str, float] = {}
    run = load_params("sim").run
    devices = [*run.devices, *(["/dev/kvm"] if kvm else [])]
    kwargs: dict[str, Any] = {
        "devices": [f"{d}:{d}:rwm" for d in devices],
        "cap_add": list(run.cap_add) or None,
    }
    started = time.monotonic()
    container = client.containers.run(
        ref,
        detach=True,
        environment={"KVM": "Y" if kvm else "N", "SIM_INSTALL_DELAY": "0"},
        ports={"5000/tcp": ("127.0.0.1", port)},
        labels={"vdsm-ci.owner": "vdsm-ci", "vdsm-ci.kind": "benchmark"},
        **kwargs,
    )
    try:
        while len(marks) < 3:
            if time.monotonic() - started > timeout:
                logs = container.logs().decode(errors="replace")[-2000:]
                raise SystemExit(f"timed out after {timeout} s; reached {marks}\n{logs}")
            page = _get(base + "/")
            if page is not None and page.status_code == 200:
                if "Please wait while Virtual DSM" in page.text:
                    marks.setdefault("wait_page", time.monotonic() - started)
                elif WELCOME_BUTTON in page.text:
                    marks.setdefault("wait_page", float("nan"))
                    marks.setdefault("welcome_button", time.monotonic() - started)
            if "guest_http" not in marks:
                api = _get(base + INFO_QUERY)
                if api is not None and api.headers.get("Content-Type", "").startswith(
                    "application/json"
                ):
                    marks["guest_http"] = time.monotonic() - started
            time.sleep(POLL)
    finally:
        container.remove(force=True, v=True)
    return marks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kvm", action="store_true", help="KVM=Y with /dev/kvm (default TCG)")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    client = docker.from_env()
    image = ensure_sim_image(client)
    print(
        f"image {image.ref}: {image.size_bytes / 1e6:.0f} MB "
        f"({'reused' if image.reused else 'built'} in {image.seconds:.1f} s), "
        f"QEMU {image.qemu_version}, {'KVM' if args.kvm else 'TCG'}"
    )
    rows = []
    for run in range(1, args.runs + 1):
        marks = one_run(client, image.ref, args.kvm, args.timeout)
        rows.append(marks)
        print(
            f"run {run}: please-wait page {marks['wait_page']:.2f} s, "
            f"guest HTTP {marks['guest_http']:.2f} s, "
            f"welcome button {marks['welcome_button']:.2f} s"
        )
    ready = [r["welcome_button"] for r in rows]
    print(
        f"welcome button: median {statistics.median(ready):.2f} s, max {max(ready):.2f} s "
        f"(goal < 20 s)"
    )
    return 0 if max(ready) < 20 else 1


if __name__ == "__main__":
    sys.exit(main())
