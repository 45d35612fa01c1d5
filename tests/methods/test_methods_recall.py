"""RECALL trains two steps on the tiny benchmark with a replay set: replayed images fill half of
every batch, their labels come from the frozen old model, and a preempted step resumes
bit-identically."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import ucd.methods.terms.replay as recall_term
import ucd.training.engine as engine
from tests.conftest import make_run
from tests.faults import sigterm_at
from ucd.data.replay import DigitsSource, build_replay_set
from ucd.evaluation.evaluate import evaluate_checkpoint
from ucd.facts.config import ConfigError
from ucd.training.checkpoint import load_checkpoint
from ucd.training.resume import Preempted

PER_CLASS = 4


@pytest.fixture(scope="module")
def replay_set(tiny_digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("replay") / "step1"
    build_replay_set("digits", "5-5", 1, out, DigitsSource(tiny_digits), per_class=PER_CLASS)
    return out


@pytest.fixture()
def recall_runs(tiny_config, tiny_splits, replay_set, tmp_path):
    """Step 0 (ft's, shared) trained, and the run config of RECALL's step 1."""
    tiny_config["method_params"] = {"recall": {"recall_ce": {"images_per_class": PER_CLASS}}}
    step0 = tmp_path / "step0.pt"
    engine.train_step(make_run(tiny_config, tiny_splits, method="ft"), step0)
    run1 = make_run(tiny_config, tiny_splits, method="recall", step=1)
    assert run1.data.replay.endswith(f"replay/digits/5-5/disjoint/step1/n{PER_CLASS}")
    run1 = run1.replace(data=dataclasses.replace(run1.data, replay=str(replay_set)))
    return step0, run1


def test_two_steps_replay_half_of_every_batch_and_keep_the_old_model_frozen(
        recall_runs, tmp_path, monkeypatch):
    step0, run1 = recall_runs
    seen = {"replayed": 0, "images": 0, "negative_targets": 0}
    targets = recall_term.recall_targets

    def spy_targets(labels, old_logits, **kw):
        out = targets(labels, old_logits, **kw)
        seen["replayed"] += int((labels < 0).flatten(1).any(1).sum())
        seen["images"] += labels.shape[0]
        seen["negative_targets"] += int((out < 0).sum())
        return out

    captured = {}
    prepare = engine.prepare_model

    def spy_prepare(run, prev):
        model, old, state = prepare(run, prev)
        captured["old"] = old
        return model, old, state

    monkeypatch.setattr(recall_term, "recall_targets", spy_targets)
    monkeypatch.setattr(engine, "prepare_model", spy_prepare)
    metrics = engine.train_step(run1, tmp_path / "step1.pt", prev=step0)
    assert metrics["iterations"] > 0
    assert all(math.isfinite(v) for v in metrics["loss_history"][-1].values())
    assert seen["images"] == 8 * metrics["iterations"]  # batch 8 ...
    assert seen["replayed"] == 4 * metrics["iterations"]  # ... half of it replayed (ratio 1)
    assert seen["negative_targets"] == 0  # every replayed pixel got a class from the old model

    old = captured["old"]
    before = load_checkpoint(step0)["model"]
    assert not old.training and set(old.state_dict()) == set(before)
    for key, value in before.items():
        assert torch.equal(old.state_dict()[key].cpu(), value), key
    assert all(not p.requires_grad for p in old.parameters())

    ckpt = load_checkpoint(tmp_path / "step1.pt")
    assert ckpt["method_state"]["recall_ce"] == {"replay_source": "digits"}
    evaluated, _ = evaluate_checkpoint(tmp_path / "step1.pt", batch_size=12)
    assert evaluated["replay_source"] == "digits"
    assert math.isfinite(evaluated["miou_all"])


def test_step_one_resumes_bit_identical(recall_runs, tmp_path, monkeypatch):
    step0, run1 = recall_runs
    run1 = run1.replace(optim=dataclasses.replace(run1.optim, epochs=2))
    engine.train_step(run1, tmp_path / "ref.pt", prev=step0)
    out = tmp_path / "cut.pt"
    with monkeypatch.context() as patch:
        sigterm_at(patch, 3)
        with pytest.raises(Preempted):
            engine.train_step(run1, out, prev=step0)
    engine.train_step(run1, out, prev=step0)
    ref, cut = load_checkpoint(tmp_path / "ref.pt")["model"], load_checkpoint(out)["model"]
    for key in ref:
        assert torch.equal(ref[key], cut[key]), key


def test_a_step_without_its_replay_set_names_the_problem(recall_runs, tmp_path):
    step0, run1 = recall_runs
    bare = run1.replace(data=dataclasses.replace(run1.data, replay=None))
    with pytest.raises(ConfigError, match="data.replay is not set"):
        engine.train_step(bare, tmp_path / "step1.pt", prev=step0)
    missing = run1.replace(data=dataclasses.replace(run1.data, replay=str(tmp_path / "none")))
    with pytest.raises(FileNotFoundError, match="ucd data replay"):
        engine.train_step(missing, tmp_path / "step1.pt", prev=step0)


def test_methods_command_lists_recall_and_its_replay(capsys):
    from ucd.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    line = next(li for li in out.splitlines() if li.startswith("recall "))
    assert "recall_ce(" in line and "images_per_class=500" in line and "replay_ratio=1.0" in line
    assert "replay at steps >= 1" in line and "step0=ft" in line
