#!/usr/bin/python3
"""Send one command to a QEMU human monitor on a unix socket and print its answer.

    hmp.py SOCKET COMMAND...

Used by entry.sh to make QEMU quit on SIGTERM through the container's private monitor.
"""

import socket
import sys

PROMPT = b"(qemu) "


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, command = argv[1], " ".join(argv[2:])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        banner = b""
        while not banner.endswith(PROMPT):
            chunk = sock.recv(4096)
            if not chunk:
                return 1
            banner += chunk
        sock.sendall(command.encode() + b"\n")
        answer = b""
        # `quit` closes the socket; other commands end with a new prompt.
        while not answer.endswith(PROMPT):
            try:
                chunk = sock.recv(4096)
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
    sys.stdout.write(answer.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
