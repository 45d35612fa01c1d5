"""A shared checkpoint or a resumable state never runs code when loaded: files holding anything
but tensors and plain containers are refused before any object in them is built."""

from __future__ import annotations

import logging
import pathlib

import pytest
import torch

from tests.conftest import make_run
from ucd.models import build_model
from ucd.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ucd.training.engine import train_step
from ucd.training.resume import load_resume, resume_path


class WritesAFile:
    """Unpickling this object writes a file (what a hostile checkpoint would do, harmlessly)."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.write_text, (self.marker, "this ran while loading"))


def _hostile_checkpoint(run, path: pathlib.Path, marker: pathlib.Path) -> None:
    """A well-formed step-0 checkpoint (with its .sha256, as save_checkpoint writes it) that
    carries the file-writing object among its metrics."""
    model = build_model(run.model, [[0, 1, 2, 3, 4, 5]])
    save_checkpoint(path, {"model": model.state_dict(), "classes": [[0, 1, 2, 3, 4, 5]],
                           "config": run.to_dict(), "method_state": {},
                           "metrics": {"note": WritesAFile(marker)}})
    assert path.with_name(path.name + ".sha256").is_file()


def test_hostile_checkpoint_is_refused_and_runs_nothing(tiny_config, tiny_splits, tmp_path):
    run0 = make_run(tiny_config, tiny_splits)
    marker, ckpt = tmp_path / "marker.txt", tmp_path / "step0" / "model.pt"
    _hostile_checkpoint(run0, ckpt, marker)
    with pytest.raises(CheckpointError, match=rf"{ckpt} names .*refused without loading"):
        load_checkpoint(ckpt)
    assert not marker.exists()
    # as a user would meet it: the shared step 0 of someone else, given to step 1
    out = tmp_path / "step1" / "model.pt"
    with pytest.raises(CheckpointError, match="refused without loading"):
        train_step(make_run(tiny_config, tiny_splits, step=1), out, prev=ckpt)
    assert not marker.exists() and not out.exists()


def test_hostile_resumable_state_is_set_aside_and_runs_nothing(tmp_path, caplog):
    marker, out = tmp_path / "marker.txt", tmp_path / "model.pt"
    path = resume_path(out)
    torch.save({"format": "ucd-resume/3", "model": {"w": torch.zeros(2)},
                "rng": WritesAFile(marker)}, path)
    with caplog.at_level(logging.WARNING, logger="ucd.training.resume"):
        assert load_resume(path, {"any": "config"}) is None
    assert not marker.exists()
    assert not path.exists() and path.with_name(path.name + ".stale").exists()
    assert any(str(path) in r.getMessage() and "refused" in r.getMessage()
               for r in caplog.records)


def test_plain_payloads_still_load(tiny_config, tiny_splits, tmp_path):
    """What ucd itself writes (model, config, metrics with NaN and None) loads as before."""
    run0 = make_run(tiny_config, tiny_splits)
    model = build_model(run0.model, [[0, 1, 2, 3, 4, 5]])
    save_checkpoint(tmp_path / "m.pt", {
        "model": model.state_dict(), "classes": [[0, 1, 2, 3, 4, 5]], "config": run0.to_dict(),
        "method_state": {"ewc": {"fisher": {"w": torch.ones(3)}}},
        "metrics": {"images_per_s": float("nan"), "peak_gpu_mem_mb": None,
                    "loss_history": [{"total": 1.5}]}})
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt["metrics"]["peak_gpu_mem_mb"] is None
    assert torch.equal(ckpt["method_state"]["ewc"]["fisher"]["w"], torch.ones(3))
