"""Run the simulated DSM: ``python -m vdsm_sim.guest --host 127.0.0.1 --port 5000``.

``--tls-port 5001 --tls-cert CERT --tls-key KEY`` (or ``SIM_TLS_PORT``, ``SIM_TLS_CERT``,
``SIM_TLS_KEY``) also serves HTTPS (DSM's 5001) from the same state; it prints
``sim guest listening on https://HOST:PORT`` once bound.

In the guest the package is copied as top-level ``guest``: ``python3 -m guest --host 0.0.0.0
--port 5000`` with ``PYTHONPATH=/opt/sim``. Prints ``sim guest listening on http://HOST:PORT``
to stderr once the socket is bound (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import threading

from . import dataplane
from .scenario import Scenario, ScenarioError
from .server import SimServer, make_server
from .state import SimState


def _address(server: SimServer) -> str:
    """``HOST:PORT`` the server is bound to (an IPv4 server: ``server_address`` is a pair)."""
    host, port = server.server_address[:2]
    return f"{host}:{port}" if isinstance(host, str) else f"{host.decode()}:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="guest", description="Simulated DSM web server")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--dataplane", action="store_true", help="serve SMB, NFS and iSCSI (the guest only)"
    )
    tls_env = os.environ.get("SIM_TLS_PORT", "")
    parser.add_argument(
        "--tls-port",
        type=int,
        default=int(tls_env) if tls_env.isdigit() else None,
        help="also serve HTTPS here (default: SIM_TLS_PORT)",
    )
    parser.add_argument("--tls-cert", default=os.environ.get("SIM_TLS_CERT", ""))
    parser.add_argument("--tls-key", default=os.environ.get("SIM_TLS_KEY", ""))
    parser.add_argument(
        "--rsa-key",
        default=os.environ.get("SIM_RSA_KEY_FILE", ""),
        help="login RSA key as JSON (python -m <package>.crypto writes one); without it the "
        "key is generated when a client first asks for it",
    )
    args = parser.parse_args(argv)
    if args.tls_port is not None and not (args.tls_cert and args.tls_key):
        sys.stderr.write("sim guest: --tls-port needs --tls-cert and --tls-key (PEM files)\n")
        return 2
    try:
        scenario = Scenario.from_env(dict(os.environ))
    except ScenarioError as err:
        sys.stderr.write(f"sim guest: bad scenario: {err}\n")
        return 2
    state = SimState(scenario)
    if args.rsa_key:
        try:
            state.load_rsa_key(args.rsa_key)
        except (OSError, ValueError, TypeError) as err:
            sys.stderr.write(f"sim guest: cannot read the login key {args.rsa_key}: {err}\n")
            return 2
    server = make_server(args.host, args.port, state)
    if args.dataplane:
        dataplane.enable(state)
    if args.tls_port is not None:
        try:
            tls_server = make_server(
                args.host, args.tls_port, state, tls=(args.tls_cert, args.tls_key)
            )
        except (OSError, ssl.SSLError) as err:
            sys.stderr.write(f"sim guest: cannot serve HTTPS: {err}\n")
            return 2
        threading.Thread(
            target=tls_server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        ).start()
        sys.stderr.write(f"sim guest listening on https://{_address(tls_server)}\n")
    sys.stderr.write(
        f"sim guest listening on http://{_address(server)} ({scenario.dsm_version}, "
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
