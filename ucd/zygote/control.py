"""Start and stop a fork server (standard library only: the client and the Snakefile use it).

A server is started by the first client that finds none (``start_detached``: a daemon, so the
job that started it is not its parent) and stops when told (``stop``: the workflow's onsuccess
and onerror), when the process named in its ``owner`` file (``set_owner``: the workflow's
onstart) is gone, when its sources change, or after ``idle_s`` seconds without a job.
``Server`` starts one in the foreground, for tests and benchmarks.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
from pathlib import Path

from ucd.zygote import wire

IDLE_S = 600.0  # a backstop: a workflow's server stops with its owner, Snakemake


def server_command(directory: str, lock_fd: int, idle_s: float = IDLE_S,
                   entry: str | None = None) -> list[str]:
    """The command line of a server (``entry``: tests only)."""
    return [sys.executable, "-m", "ucd.zygote.server", os.path.abspath(directory),
            "--lock-fd", str(lock_fd), "--idle-s", str(idle_s),
            *(["--entry", entry] if entry else [])]


def take_lock(directory: str) -> int | None:
    """The server lock of ``directory``, held (a descriptor), or None when a server holds it."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(directory, wire.LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def start_detached(directory: str, idle_s: float = IDLE_S) -> bool:
    """Start a server for ``directory`` in the background unless one runs or starts there;
    True when this call started it. It inherits this process's environment, working
    directory and interpreter, and holds the lock for its whole life."""
    fd = take_lock(directory)
    if fd is None:
        return False
    pid = os.fork()
    if pid == 0:  # an intermediate process, so the server's parent is not this job
        try:
            os.setsid()
            if os.fork() == 0:
                _exec_server(directory, fd, idle_s)
        finally:
            os._exit(0)
    os.close(fd)
    os.waitpid(pid, 0)
    return True


def _exec_server(directory: str, fd: int, idle_s: float) -> None:
    log = os.open(os.path.join(directory, wire.LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                  0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.set_inheritable(fd, True)
    cmd = server_command(directory, fd, idle_s)
    os.execv(cmd[0], cmd)


def set_owner(directory: str, pid: int | None) -> None:
    """Name the process whose end stops the server of ``directory`` (None: nobody)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = Path(directory, wire.OWNER)
    if pid is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(str(pid))


def server_pid(directory: str) -> int | None:
    """The pid of the server of ``directory`` while one holds its lock, else None."""
    fd = take_lock(directory)
    if fd is not None:
        os.close(fd)
        return None
    try:
        return int(Path(directory, wire.PID).read_text())
    except (OSError, ValueError):
        return None


def stop(directory: str, timeout: float = 30.0) -> bool:
    """Ask the server of ``directory`` to stop (it finishes its running jobs first); True when
    none runs there any more within ``timeout`` seconds."""
    pid = server_pid(directory)
    if pid is None:
        return True
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server_pid(directory) is None:
            return True
        time.sleep(0.05)
    return False


class Server:
    """A server started in the foreground (a child of this process), for tests and
    benchmarks: ``Server.start(dir, env=...)``, ``wait_ready()``, ``served()``, ``stop()``."""

    def __init__(self, directory: Path, proc, env: dict[str, str]) -> None:
        self.directory, self.proc = directory, proc
        self.env = env  # the server's environment: a client with another one is declined

    @classmethod
    def start(cls, directory: str | Path, env: dict[str, str] | None = None,
              cwd: str | Path | None = None, idle_s: float = IDLE_S,
              entry: str | None = None) -> Server:
        import subprocess

        directory = Path(directory).resolve()
        env = {**(os.environ if env is None else env), wire.ENV: str(directory)}
        fd = take_lock(str(directory))
        if fd is None:
            raise RuntimeError(f"a fork server already runs for {directory}")
        log = open(directory / wire.LOG, "ab")
        proc = subprocess.Popen(server_command(str(directory), fd, idle_s, entry), pass_fds=[fd],
                                env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True)
        os.close(fd)
        log.close()
        return cls(directory, proc, env)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the server listens (it has imported the training path)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock = wire.connect(str(self.directory))
            if sock is not None:
                sock.close()
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the fork server exited:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"the fork server is not ready after {timeout} s")

    def log(self) -> str:
        return (self.directory / wire.LOG).read_text()

    def served(self) -> int:
        """Jobs the server has forked so far (from its log)."""
        return self.log().count(" forked ")

    def stop(self, timeout: float = 30.0) -> int:
        """Stop it (after its running jobs); its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)
