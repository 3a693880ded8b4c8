"""The ``vdsm`` command: a thin client of vdsmlib.

::

    vdsm [--project DIR] build [DSM_VERSION] [-p NAME=VALUE ...] [--no-cache]
        [--from-checkpoint NAME] [--keep]
    vdsm checkpoints [DSM_VERSION]
    vdsm explore DSM_VERSION CHECKPOINT
    vdsm clean [--run-id ID] [--checkpoints] [--all] [--dry-run]
    vdsm publish [DSM_VERSION] --repository REGISTRY/REPO
    vdsm sim build | vdsm sim run --port PORT [-e KNOB=VALUE ...]   (a plugin: vdsmlib.cli)

Subcommands beyond the built-in ones come from the ``vdsmlib.cli`` entry points
(:mod:`vdsmlib.pipeline.plugins`); the simulator's ``vdsm sim`` is one.

``main(argv) -> int`` is the one place that maps errors to exit codes: 0 ok, 1 a build or
runtime error (one line on stderr), 2 bad usage or parameters, 130 interrupted (SIGINT),
143 terminated (SIGTERM, what a cancelled CI job or ``timeout`` sends). SIGTERM is handled like
SIGINT: the build's containers and QMP folders are removed and ``result.json`` records why.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from vdsmlib import project
from vdsmlib.errors import VdsmError
from vdsmlib.params import ParamsError
from vdsmlib.pipeline import plugins

__all__ = ["main"]


def _parse_overrides(pairs: Sequence[str]) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ParamsError(f"-p {pair!r}: expected NAME=VALUE")
        # YAML values, like papermill's -y: sim_knobs={SIM_SCREEN_SEED: "7"}
        overrides[name] = yaml.safe_load(value) if value[:1] in "{[" else value
    return overrides


def _cmd_build(args: argparse.Namespace) -> int:
    from vdsmlib.pipeline.parameters import build_from_parameters

    values: dict[str, object] = {
        "dsm_version": args.dsm_version,
        "no_cache": args.no_cache,
        "from_checkpoint": args.from_checkpoint,
        "keep": args.keep,
        "executor": args.executor,
        "out_dir": str(args.out),
    }
    if args.cache_repository:
        values["cache_repository"] = args.cache_repository
    build = build_from_parameters(values, overrides=_parse_overrides(args.param))
    record = asyncio.run(build.run())
    for stage in record.stages:
        print(f"  {stage.name:<12} {stage.status:<8} {stage.seconds:7.1f} s  {stage.detail}")
    print(f"result: {build.run_dir / 'result.json'}")
    print(record.image)
    return 0


def _cmd_checkpoints(args: argparse.Namespace) -> int:
    from vdsmlib.checkpoints import list_checkpoints
    from vdsmlib.docker.engine import connect

    rows = list_checkpoints(connect(), args.dsm_version)
    if not rows:
        print("no checkpoints (run a build first)")
        return 0
    print(f"{'STAGE':<12} {'FINGERPRINT':<14} {'AGE':>8} {'SIZE':>9}  IMAGE")
    for c in rows:
        age = (
            f"{c.age_seconds / 3600:.1f} h"
            if c.age_seconds >= 3600
            else f"{c.age_seconds / 60:.0f} min"
        )
        size = f"{c.size_bytes / 1e6:7.0f} MB"
        print(f"{c.stage:<12} {c.fingerprint[:12]:<14} {age:>8} {size}  {c.image}")
    return 0


def _cmd_explore(args: argparse.Namespace) -> int:
    from vdsmlib.docker.engine import connect
    from vdsmlib.notebook.explore import restore_checkpoint, run_fingerprint
    from vdsmlib.params import load_params

    params = load_params(args.dsm_version)
    # This checkout's checkpoint (its params, profiles and knobs), not whichever build on the
    # engine made the newest one.
    found = (
        None
        if args.any_build
        else run_fingerprint(args.out_dir, params.dsm_version, args.checkpoint)
    )
    fingerprint = None
    if found is None and not args.any_build:
        print(
            f"no run in {args.out_dir}/ reckoned a {args.checkpoint} checkpoint for "
            f"{params.dsm_version}: run `make build DSM_VERSION={params.dsm_version}` first, or "
            "pass --any-build for the newest checkpoint any build made",
            file=sys.stderr,
        )
        return 2
    if found is not None:
        run_id, fingerprint = found
        print(f"checkpoint {args.checkpoint} of run {run_id} (fingerprint {fingerprint[:12]})")
    vm = restore_checkpoint(connect(), params, args.checkpoint, fingerprint=fingerprint)
    asyncio.run(vm.wait_api(params.timeouts.restore))
    print(f"DSM restored from checkpoint {args.checkpoint}: {vm.url}")
    print(f"login: {params.admin.user} (password from params/{params.dsm_version}.yaml)")
    print(f"remove it with: docker rm -fv {vm.container.short_id}   (or vdsm clean)")
    print(vm.container.id)
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    from vdsmlib.docker.engine import connect
    from vdsmlib.docker.images import clean
    from vdsmlib.pipeline.janitor import project_repositories
    from vdsmlib.pipeline.trust import smoke_passed

    kinds: tuple[str, ...] = ()
    if args.checkpoints:
        kinds = ("checkpoint", "base")
    if args.all:
        kinds = ("checkpoint", "base", "final", "sim")
    report = clean(
        connect(),
        run_id=args.run_id,
        kinds=kinds,
        dry_run=args.dry_run,
        repositories=project_repositories(),
        promoted=lambda image_id: smoke_passed(image_id) is not None,
    )
    verb = "would remove" if args.dry_run else "removed"
    for kind in ("containers", "images", "networks"):
        for item in report[kind]:
            print(f"{verb} {kind[:-1]} {item}")
    for item in report["kept"]:
        print(f"kept image {item}")
    print(f"{verb} {len(report['containers'])} containers, {len(report['images'])} images")
    return 0


def _cmd_pin(args: argparse.Namespace) -> int:
    from docker.errors import DockerException

    from vdsmlib.docker.engine import connect
    from vdsmlib.params import load_params
    from vdsmlib.pipeline.pin import pinned_params

    params = load_params(args.dsm_version)
    ref = (args.image or params.base.image).split("@", 1)[0]
    try:
        digest = connect().images.get_registry_data(ref).id
    except DockerException as err:
        raise VdsmError(
            f"cannot resolve {ref} in its registry ({str(err).splitlines()[0][:160]}): run "
            "`vdsm pin` where the registry is reachable"
        ) from err
    path = project.params_dir() / f"{params.dsm_version}.yaml"
    text = pinned_params(path.read_text(), ref, digest, params.base.guest_address, where=str(path))
    path.write_text(text)
    print(f"pinned {ref} to {digest} in {path}")
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from vdsmlib.docker.engine import connect
    from vdsmlib.pipeline.publish import publish

    record = args.out / "latest" / "result.json"
    result = publish(connect(), args.dsm_version, args.repository, record=record)
    for pushed in result.pushed:
        print(f"pushed {pushed.repository}:{pushed.tag} ({pushed.size_bytes / 1e6:.0f} MB)")
    if result.record:
        print(f"recorded in {result.record}")
    print(result.reference)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vdsm", description="Build Docker images of Virtual DSM that start configured."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--project",
        type=Path,
        metavar="DIR",
        help=f"project directory with params/ and notebooks/ (sets ${project.HOME_ENV}; "
        "default: the files installed with vdsmlib)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build the configured image (resumes from checkpoints)")
    p.add_argument("dsm_version", nargs="?", default="sim", help="params/<this>.yaml (default sim)")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter (admin_password=..., sim_knobs={K: V})",
    )
    p.add_argument("--no-cache", action="store_true", help="ignore every checkpoint")
    p.add_argument(
        "--from-checkpoint",
        choices=("start-ready", "final"),
        help="resume from this checkpoint (must match the current fingerprint)",
    )
    p.add_argument("--keep", action="store_true", help="leave the smoke-test container running")
    p.add_argument(
        "--cache-repository",
        metavar="REGISTRY/REPO",
        help="push checkpoints there; pull a missing one from there instead of booting",
    )
    p.add_argument(
        "--executor",
        choices=("inline", "notebook"),
        default="inline",
        help="run stages in-process or as papermill notebooks (default inline)",
    )
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("checkpoints", help="list checkpoints: stage, fingerprint, age, size")
    p.add_argument("dsm_version", nargs="?")
    p.set_defaults(func=_cmd_checkpoints)

    p = sub.add_parser("explore", help="restore a checkpoint, leave it running, print URL")
    p.add_argument("dsm_version")
    p.add_argument("checkpoint", choices=("start-ready", "final"))
    p.add_argument(
        "--out-dir", default="out", help="run folders: the newest run's checkpoint is restored"
    )
    p.add_argument(
        "--any-build",
        action="store_true",
        help="the newest checkpoint of that name on the engine, whichever build made it",
    )
    p.set_defaults(func=_cmd_explore)

    p = sub.add_parser("clean", help="remove containers and images this project left behind")
    p.add_argument("--run-id", help="only what this run created")
    p.add_argument(
        "--checkpoints",
        action="store_true",
        help="the checkpoint cache and build bases too (otherwise containers of dead runs and "
        "superseded images: untagged ones this project made)",
    )
    p.add_argument(
        "--all", action="store_true", help="checkpoints, final images and the simulator image too"
    )
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=_cmd_clean)

    p = sub.add_parser(
        "pin",
        help="pin the target's base image by digest, with the settings its release needs "
        "(needs its registry)",
    )
    p.add_argument("dsm_version")
    p.add_argument(
        "--image",
        metavar="REF",
        help="pin this virtual-dsm release instead of the one in params (e.g. "
        "vdsm/virtual-dsm:7.65)",
    )
    p.set_defaults(func=_cmd_pin)

    p = sub.add_parser("publish", help="push the final image's tags to a registry repository")
    p.add_argument("dsm_version", nargs="?", default="sim", help="target (default sim)")
    p.add_argument(
        "--repository",
        required=True,
        metavar="REGISTRY/REPO",
        help="where to push (credentials: docker login)",
    )
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out)")
    p.set_defaults(func=_cmd_publish)

    for add_subcommands in plugins.cli_plugins().values():
        add_subcommands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.project is not None:
        # the environment, not a global: stage notebooks run in kernels of their own
        os.environ[project.HOME_ENV] = str(args.project.resolve())
    terminated: list[int] = []

    def on_sigterm(signum: int, frame: object) -> None:
        # Exactly what Ctrl-C does (asyncio cancels the build, which cleans up), noted first.
        from vdsmlib.pipeline.run import note_signal

        terminated.append(signum)
        note_signal(signum)
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        name = "terminated (SIGTERM)" if terminated else "interrupted"
        print(f"vdsm: {name}; containers of this run were removed", file=sys.stderr)
        return 143 if terminated else 130
    except OSError as err:
        from vdsmlib.pipeline.run import describe_os_error, is_file_error

        if not is_file_error(err):
            raise
        print(f"vdsm: {describe_os_error(err, [Path.cwd()])}", file=sys.stderr)
        return 1
    except ParamsError as err:
        print(f"vdsm: {err}", file=sys.stderr)
        return 2
    except VdsmError as err:
        print(f"vdsm: {err}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
