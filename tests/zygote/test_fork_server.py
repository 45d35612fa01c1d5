"""The fork server (ucd.zygote): a job run through it sees nothing of the jobs before it, fails
alone when it crashes or is killed, gets its signals, and ends as its own process would; a
client that finds no server, or one that differs from it, runs the job itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ucd.zygote import control, wire
from ucd.zygote.server import PRELOAD

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "tests.zygote.probe:main"  # the server runs the probe where ucd.cli.main would run
# The thread settings Snakemake gives every job (one thread per job in the default config).
THREADS_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
DETERMINISTIC = ("torch_threads", "torch_dtype", "grad_enabled", "module_global", "task_cache",
                 "weights_cache", "decoded_used", "imported_minidom", "env_dirty", "root_handlers",
                 "sigterm_default", "sigint_default", "cwd")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = control.Server.start(tmp_path_factory.mktemp("zygote"), env={**os.environ, **THREADS_ENV},
                             cwd=ROOT, entry=ENTRY, idle_s=600)
    s.wait_ready()
    yield s
    assert s.stop() == 0


def ucd(env: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """`python -m ucd train ARGS` as the workflow starts it."""
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.run([sys.executable, "-m", "ucd", "train", *args], cwd=ROOT, env=env,
                          text=True, timeout=300, **streams)


def fresh_state(env: dict, out: Path) -> dict:
    """The probe's state in a fresh interpreter that imported what the server imports."""
    code = (f"import importlib; [importlib.import_module(m) for m in {PRELOAD!r}]; "
            f"from tests.zygote.probe import main; main(['train', 'state', {str(out)!r}])")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=300)
    return json.loads(out.read_text())


def test_a_job_sees_nothing_of_the_job_before_it(server, tmp_path):
    served = server.served()
    assert ucd(server.env, "dirty", str(tmp_path / "dirty.json")).returncode == 0
    first = json.loads((tmp_path / "dirty.json").read_text())
    assert first["module_global"] == "set by the first job" and first["torch_threads"] == 2
    assert first["task_cache"] == 1 and first["env_dirty"] == "1" and first["decoded_used"] == 1
    for name in ("a", "b"):
        proc = ucd(server.env, "state", str(tmp_path / f"{name}.json"))
        assert proc.returncode == 0, proc.stderr
    assert server.served() == served + 3
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("a", "b"))
    fresh = fresh_state(server.env, tmp_path / "fresh.json")
    for key in DETERMINISTIC:  # as a fresh interpreter after the same imports
        assert a[key] == b[key] == fresh[key], key
    assert len({first["pid"], a["pid"], b["pid"], os.getpid()}) == 4
    assert a["argv"] == ["train", "state", str(tmp_path / "a.json")]
    # The global random states are fresh in each job (seeded from the OS, as at a fresh
    # start: torch 2.14 seeds its CPU generator so too), neither shared between forks nor
    # left by the first job's seeds.
    np.random.seed(5)
    seeded = np.random.random(6).tolist()
    assert first["numpy_random"] == seeded[:3] and first["torch_initial_seed"] == 123
    for st in (a, b):
        assert st["numpy_random"] not in (seeded[:3], seeded[3:])
    for key in ("torch_initial_seed", "torch_rand", "numpy_random", "python_random"):
        assert len({json.dumps(st[key]) for st in (first, a, b, fresh)}) == 4, key


def test_the_job_writes_where_the_client_was_redirected(server, tmp_path):
    with open(tmp_path / "out.txt", "w") as out:
        proc = ucd(server.env, "print", "hello", stdout=out)
    assert proc.returncode == 0
    assert (tmp_path / "out.txt").read_text() == "hello\n"
    assert proc.stderr == "to stderr: hello\n"


def test_a_crashing_job_fails_alone(server, tmp_path):
    crash = ucd(server.env, "crash")
    assert crash.returncode == 1
    assert "RuntimeError: the probe job crashed on purpose" in crash.stderr
    assert "Traceback" in crash.stderr
    assert ucd(server.env, "exit", "5").returncode == 5
    assert ucd(server.env, "state", str(tmp_path / "after.json")).returncode == 0
    assert server.proc.poll() is None


def _waiting_job(env: dict, pidfile: Path) -> tuple[subprocess.Popen, int]:
    client = subprocess.Popen([sys.executable, "-m", "ucd", "train", "wait", str(pidfile)],
                              cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return client, int(pidfile.read_text())


def _gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_killed_job_fails_with_its_signal_and_alone(server, tmp_path):
    client, job = _waiting_job(server.env, tmp_path / "pid")
    assert job != client.pid
    os.kill(job, signal.SIGKILL)
    code = client.wait(60)
    assert code == -signal.SIGKILL, client.stderr.read() + server.log()[-2000:]
    assert ucd(server.env, "state", str(tmp_path / "after.json")).returncode == 0


def test_signals_to_the_client_reach_the_job(server, tmp_path):
    client, job = _waiting_job(server.env, tmp_path / "pid")
    client.send_signal(signal.SIGTERM)
    assert client.wait(60) == 3  # the job's own SIGTERM handler exits 3
    assert _gone(job)


def test_a_killed_client_takes_its_job_with_it(server, tmp_path):
    client, job = _waiting_job(server.env, tmp_path / "pid")
    client.kill()
    client.wait(60)
    assert _gone(job)
    assert ucd(server.env, "state", str(tmp_path / "after.json")).returncode == 0


def test_a_client_in_another_environment_runs_the_job_itself(server):
    """ATEN_CPU_CAPABILITY (replicate runs set it) is read when torch loads: a fork of a
    server without it cannot honour it, so the job runs in a fresh interpreter."""
    served = server.served()
    env = {**server.env, "ATEN_CPU_CAPABILITY": "default"}
    proc = ucd(env, "--help")
    assert proc.returncode == 0
    assert "usage: ucd train" in proc.stdout  # ucd.cli ran here, not the server's probe
    assert "declined" in proc.stderr and "ATEN_CPU_CAPABILITY" in proc.stderr
    assert server.served() == served
    served_help = ucd(server.env, "--help")
    assert served_help.returncode == 0 and "usage" not in served_help.stdout
    assert server.served() == served + 1


def test_no_server_or_a_stale_socket_runs_the_job_here_and_starts_one(tmp_path):
    directory = tmp_path / "zygote"
    directory.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(directory / wire.SOCKET))  # a socket file nobody listens on
    stale.close()
    env = {**os.environ, **THREADS_ENV, wire.ENV: str(directory)}
    first = ucd(env, "--help")
    assert first.returncode == 0 and "usage: ucd train" in first.stdout
    deadline = time.monotonic() + 120
    while wire.connect(str(directory)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        second = ucd(env, "--help")  # the real ucd.cli, now in a fork of the new server
        assert second.returncode == 0 and second.stdout == first.stdout
        assert (directory / wire.LOG).read_text().count(" forked ") == 1
        assert control.server_pid(str(directory)) is not None
    finally:
        assert control.stop(str(directory))
    assert not (directory / wire.SOCKET).exists()
    assert control.server_pid(str(directory)) is None


def test_a_server_whose_sources_changed_declines_and_stops(tmp_path):
    s = control.Server.start(tmp_path / "zygote", env={**os.environ, **THREADS_ENV}, cwd=ROOT,
                             entry=ENTRY)
    s.wait_ready()
    source = ROOT / "ucd" / "zygote" / "__init__.py"
    before = source.stat()
    try:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        proc = ucd(s.env, "--help")
        assert "usage: ucd train" in proc.stdout
        assert "sources changed" in proc.stderr
        assert s.proc.wait(30) == 0  # it stops rather than serve old code
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
        if s.proc.poll() is None:
            s.stop()


def test_a_server_stops_when_its_owner_ends(tmp_path):
    """The workflow names Snakemake's pid as the owner: a killed Snakemake (no onerror)
    leaves no server behind."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    control.set_owner(str(tmp_path / "zygote"), owner.pid)
    s = control.Server.start(tmp_path / "zygote", env={**os.environ, **THREADS_ENV}, cwd=ROOT,
                             entry=ENTRY)
    try:
        s.wait_ready()
        time.sleep(1.5)
        assert s.proc.poll() is None  # its owner runs
        owner.kill()
        owner.wait()
        assert s.proc.wait(30) == 0
        assert "its owner ended: stopping" in s.log()
    finally:
        owner.kill()
        if s.proc.poll() is None:
            s.stop()
