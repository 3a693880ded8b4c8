"""Run the simulated DSM: ``python -m vdsmlib.sim.guest --host 127.0.0.1 --port 5000``.

In the guest the package is copied as top-level ``guest``: ``python3 -m guest --host 0.0.0.0
--port 5000`` with ``PYTHONPATH=/opt/sim``. Prints ``sim guest listening on http://HOST:PORT``
to stderr once the socket is bound (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import dataplane
from .scenario import Scenario, ScenarioError
from .server import make_server
from .state import SimState


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="guest", description="Simulated DSM web server")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--dataplane", action="store_true", help="serve SMB, NFS and iSCSI (the guest only)"
    )
    args = parser.parse_args(argv)
    try:
        scenario = Scenario.from_env(dict(os.environ))
    except ScenarioError as err:
        sys.stderr.write(f"sim guest: bad scenario: {err}\n")
        return 2
    state = SimState(scenario)
    server = make_server(args.host, args.port, state)
    if args.dataplane:
        dataplane.enable(state)
    host, port = server.server_address[:2]
    sys.stderr.write(
        f"sim guest listening on http://{host}:{port} ({scenario.dsm_version}, "
        f"screens={','.join(scenario.screens) or '-'}, install_delay={scenario.install_delay}s)\n"
    )
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
