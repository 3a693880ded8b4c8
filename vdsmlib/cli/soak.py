"""Restore soak: start the final image N times, each time until the admin can log in.

``make soak`` (``SOAK_N``, default 20) runs :func:`main` on the image of ``out/latest``; every
restore must log in, and the report gives min/median/max seconds from ``docker run`` to login::

    python -m vdsmlib.cli.soak --n 20 [--image REF] [--dsm-version sim]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import docker

from vdsmlib.docker import labels as L
from vdsmlib.docker.container import VmContainer
from vdsmlib.docker.engine import connect
from vdsmlib.errors import VdsmError
from vdsmlib.params import Params, load_params
from vdsmlib.webapi.readiness import DsmLoginReady

__all__ = ["SoakReport", "main", "soak"]


@dataclass
class SoakReport:
    image: str
    seconds: list[float] = field(default_factory=list)

    def summary(self) -> str:
        s = self.seconds
        return (
            f"{len(s)} restores of {self.image}, all logged in; seconds to login: "
            f"min {min(s):.1f}, median {statistics.median(s):.1f}, max {max(s):.1f}"
        )


async def soak(
    client: docker.DockerClient, image: str, params: Params, n: int, *, run_id: str = "soak"
) -> SoakReport:
    """Restore ``image`` ``n`` times, one after another; raise on the first that cannot log in."""
    if n < 1:
        raise VdsmError(f"soak: N must be at least 1, got {n}")
    report = SoakReport(image)
    for i in range(n):
        started = time.monotonic()
        with VmContainer.start(
            client,
            image,
            labels=L.owner_labels("soak", run_id),
            devices=params.run.devices,
            cap_add=params.run.cap_add,
        ) as vm:
            try:
                await (
                    DsmLoginReady(vm.url(5000), params.admin.user, params.admin.password)
                    .with_timeout(params.timeouts.restore)
                    .wait_async(describe=vm.logs_tail, alive=vm.died)
                )
            except VdsmError as err:
                raise VdsmError(f"soak: restore {i + 1} of {n} did not log in: {err}") from err
        report.seconds.append(round(time.monotonic() - started, 2))
        print(f"restore {i + 1}/{n}: login after {report.seconds[-1]:.1f} s", flush=True)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="restores (default 20)")
    parser.add_argument("--image", help="default: the image of out/latest/result.json")
    parser.add_argument("--dsm-version", default="sim", help="params of the image (default sim)")
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)
    try:
        image = args.image
        if not image:
            result = args.out / "latest" / "result.json"
            if not result.is_file():
                raise VdsmError(f"no {result}: run `make build` first or pass --image")
            image = json.loads(result.read_text())["image"]
            if not image:
                raise VdsmError(f"{result} names no image: the last build failed")
        params = load_params(args.dsm_version)
        report = asyncio.run(soak(connect(), image, params, args.n))
    except VdsmError as err:
        print(f"soak: {err}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
