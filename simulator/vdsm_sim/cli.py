"""``vdsm sim``: build the DSM simulator image, or run a fresh simulator.

::

    vdsm sim build [--rebuild]
    vdsm sim run --port 5000 [-e SIM_SCREENS=update-options,2fa-promo] [--kvm]

``vdsm sim run`` starts an unconfigured simulator (the DSM welcome page) detached, with port
5000 published on 127.0.0.1:PORT and the ``run`` options of ``params/sim.yaml`` (the tun device
and NET_ADMIN that virtual-dsm's NAT networking needs), and prints the container id on its last
line.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

import docker
import docker.errors

from vdsmlib.docker.container import run_detached
from vdsmlib.docker.labels import owner_labels
from vdsmlib.errors import VdsmError
from vdsmlib.params import load_params

__all__ = ["SimRunError", "add_subcommands"]

_KNOB_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class SimRunError(VdsmError):
    """``vdsm sim run`` could not start the simulator container."""


def _client() -> docker.DockerClient:
    from vdsmlib.docker.engine import connect

    return connect()


def _cmd_build(args: argparse.Namespace) -> int:
    from vdsm_sim.image.build import ensure_sim_image

    image = ensure_sim_image(_client(), rebuild=args.rebuild)
    state = "reused" if image.reused else "built"
    print(
        f"{image.ref} ({image.id[:19]}): {image.size_bytes / 1e6:.0f} MB, {state} in "
        f"{image.seconds:.1f} s, QEMU {image.qemu_version}"
    )
    return 0


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _KNOB_NAME.match(name):
            raise SimRunError(
                f"-e {pair!r}: expected NAME=VALUE with an upper-case NAME "
                "(SIM_* knobs, or container settings such as RAM_SIZE)"
            )
        env[name] = value
    return env


def _cmd_run(args: argparse.Namespace) -> int:
    from vdsm_sim.image.build import ensure_sim_image

    client = _client()
    image = ensure_sim_image(client)
    env = {"KVM": "Y" if args.kvm else "N"}
    env.update(_parse_env(args.env))
    run_kwargs: dict[str, Any] = {
        "environment": env,
        "ports": {"5000/tcp": ("127.0.0.1", args.port)},
        "labels": owner_labels("sim-run", f"sim-run-{time.strftime('%Y%m%d-%H%M%S')}"),
    }
    # The same docker run options as every build of the sim target (params/sim.yaml `run`).
    run = load_params("sim").run
    devices = [*run.devices, *(["/dev/kvm"] if args.kvm else [])]
    run_kwargs["devices"] = [f"{d}:{d}:rwm" for d in devices]
    if run.cap_add:
        run_kwargs["cap_add"] = list(run.cap_add)
    try:
        container = run_detached(client, image.ref, **run_kwargs)
    except docker.errors.DockerException as err:
        raise SimRunError(
            f"cannot start {image.ref} on 127.0.0.1:{args.port}: {err}; "
            "is the port already in use? (choose another with --port)"
        ) from err
    print(
        f"simulator {image.ref} starting: http://127.0.0.1:{args.port}/ "
        f"(remove with: docker rm -fv {container.short_id})"
    )
    print(container.id)
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Add ``sim build`` and ``sim run`` to the ``vdsm`` command's subparsers."""
    sim = subparsers.add_parser("sim", help="build or run the DSM simulator image")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)

    p = sim_sub.add_parser("build", help="build the simulator image (reused when unchanged)")
    p.add_argument("--rebuild", action="store_true", help="build even if the image exists")
    p.set_defaults(func=_cmd_build)

    p = sim_sub.add_parser("run", help="start a fresh, unconfigured simulator (detached)")
    p.add_argument("--port", type=int, required=True, help="host port for DSM's port 5000")
    p.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="a SIM_* knob or container variable (repeatable)",
    )
    p.add_argument(
        "--kvm", action="store_true", help="use KVM (passes /dev/kvm); default is TCG (KVM=N)"
    )
    p.set_defaults(func=_cmd_run)
