"""Preemption safety: an interrupted and resumed step ends with the same weights, bit for bit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import make_run
from ucd.training.checkpoint import load_checkpoint
from ucd.training.resume import RESUME_EXIT_CODE

REPO = Path(__file__).resolve().parents[2]


def _train(run_file, out, faults=(), prev=None):
    """`ucd train` as a process, with faults injected from outside (tests/faults.py)."""
    cmd = [sys.executable, "-m", "tests.faults", *faults, "--", "train", "--run", str(run_file),
           "--out", str(out)]
    if prev:
        cmd += ["--prev", str(prev)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture()
def run_file(tiny_config, tiny_splits, tmp_path):
    tiny_config["datasets"]["digits"]["optim"]["epochs"] = 2  # 2 epochs x 3 batches (disjoint)
    run = make_run(tiny_config, tiny_splits)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run.to_dict()))
    return path


def _assert_same_weights(a, b):
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.mark.parametrize("at", [1, 4])  # mid-epoch and in the second epoch
def test_sigterm_then_resume_is_bit_identical(run_file, tmp_path, at):
    ref = _train(run_file, tmp_path / "ref" / "model.pt")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "cut" / "model.pt"
    cut = _train(run_file, out, ["--sigterm-at", str(at)])
    assert cut.returncode == RESUME_EXIT_CODE, cut.stderr
    assert "received SIGTERM: saved resumable state" in cut.stderr
    assert not out.exists() and out.with_name("model.pt.resume").exists()
    again = _train(run_file, out)
    assert again.returncode == 0, again.stderr
    assert f"at iteration {at}/" in again.stderr
    assert not out.with_name("model.pt.resume").exists()
    _assert_same_weights(tmp_path / "ref" / "model.pt", out)


def test_sigkill_during_state_write_keeps_the_previous_state(run_file, tmp_path):
    ref = _train(run_file, tmp_path / "ref" / "model.pt")
    run = yaml.safe_load(run_file.read_text())
    run["train"]["checkpoint_every_s"] = 0  # save after every iteration
    run_file.write_text(yaml.safe_dump(run))
    ref2 = _train(run_file, tmp_path / "ref2" / "model.pt")
    assert ref.returncode == ref2.returncode == 0
    out = tmp_path / "cut" / "model.pt"
    cut = _train(run_file, out, ["--kill-in-save", "3"])
    assert cut.returncode == -9  # killed while writing the state of iteration 3
    assert out.with_name("model.pt.resume").exists()  # the state of iteration 2 survived
    again = _train(run_file, out)
    assert again.returncode == 0, again.stderr
    assert "at iteration 2/" in again.stderr
    _assert_same_weights(tmp_path / "ref2" / "model.pt", out)
