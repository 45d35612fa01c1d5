"""The forked child of the fork server: become the job's process, run it, exit.

It takes what a fresh ``python -m ucd`` of the job would have had (descriptors 0-2,
working directory, environment, argv), resets what the server changed (signal handlers) and
what a fork shares with its siblings (the global random states of torch's CPU generator and of
NumPy, which a fresh interpreter seeds from the OS; Python's ``random`` is reseeded by CPython
itself at fork; CUDA is not initialised in the server, so its generators start afresh), runs
``ucd.cli.main`` and exits as the interpreter would (atexit handlers, streams flushed), but
without tearing down the modules (os._exit): nothing of the job outlives its process.
"""

from __future__ import annotations

import atexit
import importlib
import io
import os
import signal
import sys
import tempfile
import traceback
from typing import NoReturn


def _stream(like: io.TextIOWrapper, fd: int, line_buffering: bool) -> io.TextIOWrapper:
    """A text stream on ``fd`` with the encoding and error handler of the server's ``like``
    (both come from the same environment as a fresh interpreter's would)."""
    raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
    buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
    return io.TextIOWrapper(buffered, encoding=like.encoding, errors=like.errors,
                            line_buffering=line_buffering)


def become_job(req: dict, fds: list[int], close: list[int]) -> None:
    """Take the job's descriptors, directory, environment and argv; reset shared state."""
    os.setpgid(0, 0)  # the job's own process group: forwarded signals reach its workers too
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for fd in close:
        os.close(fd)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = sys.__stdin__ = _stream(sys.__stdin__, 0, False)
    sys.stdout = sys.__stdout__ = _stream(sys.__stdout__, 1, os.isatty(1))
    sys.stderr = sys.__stderr__ = _stream(sys.__stderr__, 2, True)  # as Python >= 3.9
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    sys.argv = list(req["argv"])
    tempfile.tempdir = None  # read TMPDIR again, as a fresh process would
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()  # fresh entropy, as at a fresh import
    if "torch" in sys.modules:
        sys.modules["torch"].default_generator.seed()  # likewise


def exit_code(err: SystemExit) -> int:
    """The status an interpreter exits with for an uncaught SystemExit."""
    if err.code is None:
        return 0
    if isinstance(err.code, int):
        return err.code
    print(err.code, file=sys.stderr)
    return 1


def run_job(req: dict, fds: list[int], close: list[int], entry: str = "ucd.cli:main") -> NoReturn:
    """Run the job in this (forked) process and exit with its status; never returns.
    ``entry`` is the function `python -m ucd` calls (another one in tests only)."""
    code = 70  # EX_SOFTWARE: should the set-up itself fail
    try:
        become_job(req, fds, close)
        module, name = entry.split(":")
        code = getattr(importlib.import_module(module), name)(req["argv"][1:])
    except SystemExit as err:
        code = exit_code(err)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:  # noqa: BLE001 - the job's uncaught error, reported as Python does
        traceback.print_exc()
        code = 1
    finish(code)


def finish(code: int) -> NoReturn:
    """Exit as the interpreter would (atexit handlers, flushed streams), minus the teardown."""
    try:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    finally:
        if code < 0:  # died of a signal (an uncaught KeyboardInterrupt): report it as such
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code & 0xFF if code >= 0 else 1)
