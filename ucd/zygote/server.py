"""The fork server: imports the training path once, then runs each client's job in a fork.

    python -m ucd.zygote.server DIRECTORY --lock-fd FD [--idle-s S]

Before it listens it imports PRELOAD and nothing runs: no torch operation (no thread pool),
no CUDA initialisation, no root logging handler, so a fork of it is what a fresh
``python -m ucd`` would be after its imports. For each job it checks that the client would
have run the same code the same way (``mismatch``), forks, and reports the child's exit status
to the client. The child (``ucd.zygote.child``) takes the job's descriptors, working
directory, environment and argv, and runs ``ucd.cli.main``. A client that disappears takes its
job with it (SIGKILL to the job's process group, as a killed job process would have died).
"""

from __future__ import annotations

import argparse
import importlib
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

from ucd.zygote import wire

# The modules a `ucd train` job imports (the CLI registers every subcommand's parser).
PRELOAD = ("ucd.cli", "ucd.training.engine", "ucd.evaluation.evaluate", "ucd.data.cli",
           "ucd.reporting.cli", "ucd.cost.cli", "ucd.data.voc", "ucd.data.replay",
           "PIL.PngImagePlugin", "numpy.random")
REQUEST_TIMEOUT_S = 10.0


def log(text: str) -> None:
    """One line of the server log (its stdout; the root logger is left unconfigured)."""
    sys.stdout.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {text}\n")
    sys.stdout.flush()


def sources_fingerprint() -> tuple:
    """Modification times and sizes of the package's files: a job must run today's code."""
    root = Path(__file__).resolve().parents[1]
    out = []
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".yaml", ".pt") and "__pycache__" not in path.parts:
            st = path.stat()
            out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


class State:
    """What the server is and holds: its identity for the checks, the listening socket, and
    the running jobs (pid -> the client's connection, and when it was forked)."""

    def __init__(self, directory: Path, lock_fd: int, idle_s: float,
                 entry: str = "ucd.cli:main") -> None:
        self.directory, self.lock_fd, self.idle_s = directory, lock_fd, idle_s
        self.entry = entry
        self.identity = {"executable": sys.executable, "path": list(sys.path),
                         "flags": list(sys.flags), "env": dict(os.environ),
                         "xoptions": sorted(f"{k}={v}" for k, v in sys._xoptions.items()),
                         "warnoptions": list(sys.warnoptions)}
        self.sources = sources_fingerprint()
        self.selector = selectors.PollSelector()
        self.listener: socket.socket | None = None
        self.jobs: dict[int, socket.socket] = {}
        self.started: dict[int, float] = {}
        self.stopping = False
        self.stale = False
        self.last_active = time.monotonic()
        self.wake_r, self.wake_w = os.pipe()

    def own_fds(self) -> list[int]:
        """Descriptors a child must not keep (the server's, not the job's)."""
        fds = [self.lock_fd, self.wake_r, self.wake_w, *(c.fileno() for c in self.jobs.values())]
        return fds + ([self.listener.fileno()] if self.listener else [])


def mismatch(state: State, req: dict) -> str | None:
    """Why the job would not run as in a fresh interpreter here, or None."""
    if req.get("protocol") != wire.PROTOCOL:
        return f"protocol {req.get('protocol')} (server: {wire.PROTOCOL})"
    for key, mine in state.identity.items():
        theirs = req.get(key)
        if key == "env" and theirs != mine:
            names = sorted(k for k in set(theirs or {}) | set(mine)
                           if (theirs or {}).get(k) != mine.get(k))
            return f"environment differs in {', '.join(names[:8])}"
        if theirs != mine:
            return f"{key} differs"
    if state.stale or sources_fingerprint() != state.sources:
        state.stale = True
        return "ucd's sources changed since the server started"
    if threading.active_count() > 1:
        return "the server has a thread running (cannot fork safely)"
    import torch

    if torch.cuda.is_initialized():
        return "CUDA is initialised in the server (cannot fork safely)"
    return None


def peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def handle_request(state: State, conn: socket.socket) -> None:
    """Read one job request; fork it, or decline it (the client then runs it itself)."""
    conn.settimeout(REQUEST_TIMEOUT_S)
    fds: list[int] = []
    pid = None
    try:
        req, fds = wire.receive(conn, max_fds=3)
        if req is None or len(fds) != 3:  # a probe that only connected, or a broken client
            conn.close()
            return
        problem = "another user" if peer_uid(conn) != os.getuid() else mismatch(state, req)
        if problem is not None:
            log(f"declined {' '.join(req['argv'][1:2])}: {problem}")
            wire.send(conn, {"accepted": False, "reason": problem})
            conn.close()
            return
        pid = fork_job(state, conn, req, fds)
        state.jobs[pid], state.started[pid] = conn, time.monotonic()
        state.selector.register(conn, selectors.EVENT_READ, pid)
        conn.settimeout(None)
        log(f"forked {pid}: {' '.join(req['argv'][1:2])} in {req['cwd']}")
        wire.send(conn, {"accepted": True, "pid": pid})
    except (OSError, ValueError) as err:
        log(f"request failed: {err!r}")
        if pid is not None:  # forked, but its client is gone: the job goes too
            os.killpg(pid, signal.SIGKILL)
        else:
            conn.close()
    finally:
        for fd in fds:
            os.close(fd)


def fork_job(state: State, conn: socket.socket, req: dict, fds: list[int]) -> int:
    """Fork the child that runs the job (it never returns into the server's loop)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        from ucd.zygote.child import run_job

        run_job(req, fds, state.own_fds() + [conn.fileno()], state.entry)
    return pid


def client_message(state: State, conn: socket.socket, pid: int) -> None:
    """A forwarded signal for the job, or the client gone (the job is killed)."""
    try:
        msg, _ = wire.receive(conn)
    except (OSError, ValueError):
        msg = None
    try:
        if msg is None:
            state.selector.unregister(conn)
            os.killpg(pid, signal.SIGKILL)
            log(f"client of {pid} gone: job killed")
        elif "signal" in msg:
            os.killpg(pid, int(msg["signal"]))
    except ProcessLookupError:
        pass


def reap(state: State) -> None:
    """Report every child that ended to its client (and its wall and CPU time to the log)."""
    while state.jobs:
        try:
            pid, status, usage = os.wait3(os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        conn = state.jobs.pop(pid, None)
        took = time.monotonic() - state.started.pop(pid, time.monotonic())
        log(f"job {pid} ended: exit status {code} after {took:.2f} s, "
            f"{usage.ru_utime + usage.ru_stime:.2f} CPU-s")
        if conn is not None:
            try:
                state.selector.unregister(conn)
            except (KeyError, ValueError):
                pass
            try:
                wire.send(conn, {"exit": code})
            except OSError:
                pass
            conn.close()
        state.last_active = time.monotonic()


def listen(state: State) -> None:
    """Bind the socket (replacing a stale one: this process holds the lock) and listen."""
    path = state.directory / wire.SOCKET
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cwd = os.getcwd()
    os.chdir(state.directory)  # a relative name: AF_UNIX paths are short
    try:
        path.unlink(missing_ok=True)
        sock.bind(wire.SOCKET)
    finally:
        os.chdir(cwd)
    sock.listen(64)
    state.listener = sock
    state.selector.register(sock, selectors.EVENT_READ, "listener")
    state.selector.register(state.wake_r, selectors.EVENT_READ, "wake")


def stop_listening(state: State) -> None:
    if state.listener is not None:
        state.selector.unregister(state.listener)
        state.listener.close()
        state.listener = None
        (state.directory / wire.SOCKET).unlink(missing_ok=True)


def owner_gone(state: State) -> bool:
    """True when the process named in the directory's owner file (Snakemake) has ended."""
    try:
        pid = int((state.directory / wire.OWNER).read_text())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def serve(state: State) -> None:
    """The loop: accept jobs, relay signals, reap; stop when told, stale, orphaned or idle."""
    while state.jobs or not state.stopping:
        for key, _ in state.selector.select(timeout=1.0):
            if key.data == "listener":
                conn, _ = state.listener.accept()
                handle_request(state, conn)
                state.last_active = time.monotonic()
            elif key.data == "wake":
                os.read(state.wake_r, 512)
            else:
                client_message(state, key.fileobj, key.data)
        reap(state)
        idle = not state.jobs and time.monotonic() - state.last_active > state.idle_s
        why = ("stale sources" if state.stale else "its owner ended" if owner_gone(state)
               else f"idle for {state.idle_s} s" if idle else None)
        if why and not state.stopping:
            log(f"{why}: stopping")
            state.stopping = True
        if state.stopping:
            stop_listening(state)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("directory")
    p.add_argument("--lock-fd", type=int, required=True, help="the held server lock")
    p.add_argument("--idle-s", type=float, default=600.0)
    p.add_argument("--entry", default="ucd.cli:main",
                   help="MODULE:FUNCTION a job runs (tests only; `python -m ucd` runs ucd.cli)")
    args = p.parse_args(argv)
    state = State(Path(args.directory), args.lock_fd, args.idle_s, args.entry)
    for name in PRELOAD:
        importlib.import_module(name)
    (state.directory / wire.PID).write_text(str(os.getpid()))
    os.set_blocking(state.wake_w, False)
    signal.set_wakeup_fd(state.wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: setattr(state, "stopping", True))
    listen(state)
    log(f"ready: {len(sys.modules)} modules imported, "
        f"{len(os.listdir('/proc/self/task'))} OS thread(s), idle stop after {args.idle_s} s")
    serve(state)
    stop_listening(state)
    (state.directory / wire.PID).unlink(missing_ok=True)
    log("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
