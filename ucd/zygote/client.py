"""The client side: run `ucd train` in a fork of the server, or say that it cannot.

``python -m ucd`` calls :func:`run` first when ``UCD_ZYGOTE`` names a server directory. The
job's argv, working directory, environment, interpreter flags and sys.path go to the server
with this process's stdin, stdout and stderr (the descriptors themselves, so the job writes
where the shell redirected this process); the server forks a child that runs the job. This
process forwards the signals it receives to the child and exits with the child's status
(killed by a signal: the same signal). When no server answers, or the server declines (the
environment, interpreter or sources differ from its own), :func:`run` returns None and the
caller runs the job itself, as without a server; when none answered, it also starts one for
the jobs after this one. Standard library only: this runs before any heavy import.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from ucd.zygote import wire

SERVED = ("train",)  # subcommands the server runs (it has imported their modules)
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def request(argv: list[str]) -> dict:
    """What the server needs to run ``argv`` exactly as this interpreter would."""
    return {
        "protocol": wire.PROTOCOL,
        "argv": [sys.argv[0], *argv],
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "executable": sys.executable,
        "path": sys.path,
        "flags": list(sys.flags),
        "xoptions": sorted(f"{k}={v}" for k, v in sys._xoptions.items()),
        "warnoptions": sys.warnoptions,
    }


def wanted(argv: list[str]) -> str | None:
    """The server directory when this command may go through a server, else None."""
    directory = os.environ.get(wire.ENV)
    if not directory or not argv or argv[0] not in SERVED:
        return None
    if not sys.platform.startswith("linux") or any(k in os.environ for k in wire.DISTRIBUTED_ENV):
        return None  # fork + SCM_RIGHTS as used here are Linux's; a torchrun rank runs itself
    return directory


def run(argv: list[str]) -> int | None:
    """Run ``argv`` (e.g. ``["train", ...]``) in a fork of the server: its exit status, or
    None when this process should run the command itself."""
    directory = wanted(argv)
    if directory is None:
        return None
    sock = wire.connect(directory)
    if sock is None:
        from ucd.zygote.control import start_detached

        start_detached(directory)  # for the next jobs; this one runs here, now
        return None
    with sock:
        wire.send(sock, request(argv), fds=[0, 1, 2])
        reply, _ = wire.receive(sock)
        if not reply or not reply.get("accepted"):
            reason = reply.get("reason") if reply else "no answer"
            print(f"ucd: the fork server declined this job ({reason}); running it in a fresh "
                  "interpreter", file=sys.stderr, flush=True)
            return None
        return relay(sock, int(reply["pid"]))


def relay(sock: socket.socket, pid: int) -> int:
    """Forward signals to the job until the server reports its exit status; exit like it."""
    def forward(signum, frame):
        try:
            wire.send(sock, {"signal": signum})
        except OSError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    done, _ = wire.receive(sock)
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_IGN)
    if done is None:  # the server died: the job's status is lost, so it must not go on
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        print("ucd: the fork server closed the connection before the job ended; the job "
              "was stopped", file=sys.stderr, flush=True)
        return 1
    code = int(done["exit"])
    if code < 0:  # killed by a signal: die of it too, as the job's own process would have
        try:
            signal.signal(-code, signal.SIG_DFL)
        except OSError:  # SIGKILL and SIGSTOP have no handler to reset
            pass
        os.kill(os.getpid(), -code)
        return 128 - code
    return code
