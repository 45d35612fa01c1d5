"""The fork server's files and messages. Standard library only: the client imports it.

A server owns one directory (RESULTS/.ucd-zygote/ in the workflow): ``socket`` (where it
listens once it is ready), ``lock`` (held for its whole life, so one server at a time),
``pid``, ``server.log``, and ``owner``: the pid of the Snakemake run that uses it (written by
the workflow's onstart; the server stops when that process is gone). A message is a 4-byte
big-endian length and a JSON object.
"""

from __future__ import annotations

import json
import os
import socket
import struct

PROTOCOL = 1
ENV = "UCD_ZYGOTE"  # the server directory; set by the workflow's onstart for local runs
SOCKET, LOCK, PID, LOG, OWNER = "socket", "lock", "pid", "server.log", "owner"
# Environment variables a job launched by torchrun has: such a job is one rank of several.
DISTRIBUTED_ENV = ("LOCAL_RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID")
_HEADER = struct.Struct("!I")


def connect(directory: str) -> socket.socket | None:
    """A connection to the server of ``directory``, or None when none listens there.

    The socket is named relative to the directory (an AF_UNIX path holds at most ~107
    bytes): this process changes into it for the connect and back.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cwd = os.getcwd()
    try:
        os.chdir(directory)
        sock.connect(SOCKET)
        return sock
    except OSError:  # no directory, no socket, nobody listening (a stale socket), refused
        sock.close()
        return None
    finally:
        os.chdir(cwd)


def send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    """Send one message; ``fds`` travel with its first bytes (SCM_RIGHTS)."""
    body = json.dumps(message).encode()
    header = _HEADER.pack(len(body))
    if fds:
        socket.send_fds(sock, [header], fds)
        sock.sendall(body)
    else:
        sock.sendall(header + body)


def _exactly(sock: socket.socket, n: int, start: bytes = b"") -> bytes | None:
    data = start
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict | None, list[int]]:
    """One message and the descriptors sent with it; (None, []) when the peer closed."""
    fds: list[int] = []
    if max_fds:
        head, fds, _, _ = socket.recv_fds(sock, _HEADER.size, max_fds)
        if not head:
            return None, fds
    else:
        head = b""
    head = _exactly(sock, _HEADER.size, head)
    if head is None:
        return None, fds
    body = _exactly(sock, _HEADER.unpack(head)[0])
    return (None if body is None else json.loads(body)), fds
