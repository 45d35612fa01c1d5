"""A real training job (steps 0 and 1 of MiB on the tiny benchmark, each evaluated) gives the
same bits through the fork server as in a fresh interpreter (ucd.launch, which exits without
the interpreter's teardown): weights, metrics, predictions, and its whole log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from tests.conftest import make_run
from ucd.facts.config import write_yaml_atomic
from ucd.training.checkpoint import load_checkpoint
from ucd.zygote import control

ROOT = Path(__file__).resolve().parents[2]
THREADS_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
TIMINGS = ("train_time_s", "images_per_s", "eval_time_s")


def train(env: dict, run_file: Path, out: Path, prev: Path | None) -> None:
    cmd = [sys.executable, "-m", "ucd", "train", "--run", str(run_file), "--out",
           str(out / "model.pt"), "--metrics", str(out / "metrics.json"), "--predictions",
           str(out / "predictions.npz"), *(["--prev", str(prev / "model.pt")] if prev else [])]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "declined" not in proc.stderr
    assert " evaluated " in proc.stderr  # the log's last line, written before the quick exit


def steps(env: dict, runs: list[Path], where: Path) -> list[Path]:
    outs = []
    for k, run_file in enumerate(runs):
        outs.append(where / f"step{k}")
        train(env, run_file, outs[-1], outs[-2] if k else None)
    return outs


def test_a_job_gives_the_same_bits_through_the_server(tiny_config, tiny_splits, tmp_path):
    runs = []
    for k in (0, 1):
        runs.append(tmp_path / f"run{k}.yaml")
        # step 0 as the workflow trains it for MiB: the shared step 0 is ft's training
        method = "mib" if k else "ft"
        write_yaml_atomic(make_run(tiny_config, tiny_splits, method=method, step=k), runs[-1])
    env = {**os.environ, **THREADS_ENV}
    fresh = steps(env, runs, tmp_path / "fresh")
    server = control.Server.start(tmp_path / "zygote", env=env, cwd=ROOT)
    try:
        server.wait_ready()
        served = steps(server.env, runs, tmp_path / "served")
        assert server.served() == 2
    finally:
        assert server.stop() == 0
    for a, b in zip(fresh, served):
        ca, cb = load_checkpoint(a / "model.pt"), load_checkpoint(b / "model.pt")
        assert ca["model"].keys() == cb["model"].keys()
        for key, value in ca["model"].items():
            assert torch.equal(value, cb["model"][key]), key
        assert (ca["classes"], ca["config"]) == (cb["classes"], cb["config"])
        ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
        assert ma["iterations"] > 0
        assert {k: v for k, v in ma.items() if k not in TIMINGS} == {
            k: v for k, v in mb.items() if k not in TIMINGS}
        pa, pb = np.load(a / "predictions.npz"), np.load(b / "predictions.npz")
        assert sorted(pa.files) == sorted(pb.files)
        for key in pa.files:
            assert np.array_equal(pa[key], pb[key]), key
