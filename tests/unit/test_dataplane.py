"""vdsmlib.services.dataplane: port probes and failure classification, with real sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from vdsmlib.services import dataplane
from vdsmlib.services.dataplane import DataPlaneError, Endpoints, probe_port
from vdsmlib.services.spec import ServicesSpec


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server() -> Iterator[tuple[socket.socket, list[str]]]:
    """A listening socket; ``mode[0]`` is "close" (accept and close at once, as Docker's proxy
    does when nothing serves the port behind it) or "hold" (a server waiting for the client)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    mode = ["hold"]
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            if mode[0] == "close":
                conn.close()
            else:
                held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield sock, mode
    sock.close()
    for conn in held:
        conn.close()


def test_a_port_nobody_listens_on_is_refused() -> None:
    port = _closed_port()
    with pytest.raises(DataPlaneError) as err:
        probe_port("nfs", "127.0.0.1", port, timeout=2)
    assert (err.value.service, err.value.how) == ("nfs", "refused")
    assert f"127.0.0.1:{port}" in str(err.value)


def test_a_port_that_accepts_and_closes_at_once_is_refused(
    server: tuple[socket.socket, list[str]],
) -> None:
    sock, mode = server
    mode[0] = "close"
    with pytest.raises(DataPlaneError, match=r"smb data plane: refused: .* closed the connection"):
        probe_port("smb", "127.0.0.1", sock.getsockname()[1])


def test_a_server_that_waits_for_the_client_passes(
    server: tuple[socket.socket, list[str]],
) -> None:
    sock, _ = server
    probe_port("iscsi", "127.0.0.1", sock.getsockname()[1])


def test_check_names_the_first_service_whose_port_refuses(
    server: tuple[socket.socket, list[str]],
) -> None:
    """What the smoke stage raises when SMB is served but NFS's port refuses."""
    spec = ServicesSpec(nfs=True, nfs_v4=True, smb=False, shares=[{"name": "ci"}])  # type: ignore[list-item]
    ports = Endpoints("127.0.0.1", smb=server[0].getsockname()[1], nfs=_closed_port())
    with pytest.raises(DataPlaneError) as err:
        dataplane.check(ports, spec, user="u", password="p", server_name="s")
    assert (err.value.service, err.value.how) == ("nfs", "refused")


@pytest.mark.parametrize(
    ("service", "said", "how"),
    [
        ("smb", "session setup failed: NT_STATUS_LOGON_FAILURE", "auth"),
        ("smb", "tree connect failed: NT_STATUS_BAD_NETWORK_NAME", "share missing"),
        (
            "smb",
            "do_connect: Connection to x failed (Error NT_STATUS_CONNECTION_REFUSED)",
            "refused",
        ),
        ("nfs", "NFS4: (path /volume1/nope) failed with NFS4ERR_NOENT(-2)", "export missing"),
        ("nfs", "NFS4ERR_ACCESS", "auth"),
        ("iscsi", "something else", "error"),
    ],
)
def test_client_errors_are_classified(service: str, said: str, how: str) -> None:
    assert dataplane._classify(service, said) == how
