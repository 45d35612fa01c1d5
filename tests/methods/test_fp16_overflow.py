"""fp16 loss scaling: an iteration whose gradients overflow is skipped whole (no update, no
importance estimate from non-finite gradients), and a resumed step reproduces the skip."""

from __future__ import annotations

import math

import pytest
import torch

import ucd.training.engine as engine
from tests.conftest import make_run
from tests.faults import overflow_at, sigterm_at
from ucd.losses import ewc_importance, pi_importance, rw_importance
from ucd.training.checkpoint import load_checkpoint
from ucd.training.resume import Preempted

AT = 2  # the overflowing iteration (0-based), in the first of two epochs of 3 batches


def _all_finite(tree) -> bool:
    if isinstance(tree, dict):
        return all(_all_finite(v) for v in tree.values())
    return bool(torch.isfinite(tree).all())


def _watch_parameters(monkeypatch, n: int, seen: dict) -> None:
    """Record the parameters before and after iteration ``n``."""
    original = engine.train_iteration

    def iteration(step, images, labels):
        if step.ctx.iteration == n:
            seen["before"] = {k: p.detach().clone() for k, p in step.model.named_parameters()}
        losses = original(step, images, labels)
        if step.ctx.iteration == n + 1:
            seen["after"] = {k: p.detach().clone() for k, p in step.model.named_parameters()}
            seen["losses"] = losses
        if step.ctx.iteration == n + 2:  # the rate the iteration after the skip ran at
            seen["lr_next"] = step.optimizer.param_groups[0]["lr"]
            seen["max_iterations"] = step.max_iterations
        return losses

    monkeypatch.setattr(engine, "train_iteration", iteration)


IMPORTANCE = {"ewc": lambda s: ewc_importance(s["fisher"]),
              "pi": lambda s: pi_importance(s["score"]),
              "rw": lambda s: rw_importance(s["fisher"], s["score"])}


@pytest.mark.parametrize("method", ["ewc", "pi", "rw"])
def test_overflow_is_skipped_and_importance_stays_finite(method, tiny_config, tiny_splits,
                                                         tmp_path, monkeypatch):
    tiny_config["datasets"]["digits"]["optim"]["epochs"] = 2
    run = make_run(tiny_config, tiny_splits, method=method)
    seen: dict = {}
    overflow_at(monkeypatch, AT)
    _watch_parameters(monkeypatch, AT, seen)
    engine.train_step(run, tmp_path / "model.pt")
    for name, before in seen["before"].items():  # the update of that iteration was skipped
        assert torch.equal(before, seen["after"][name]), name
    state = load_checkpoint(tmp_path / "model.pt")["method_state"][method]
    assert _all_finite(state), f"{method}'s carried estimate holds inf/NaN"
    assert _all_finite(IMPORTANCE[method](state)), f"{method}'s next-step importance"
    # the schedule and the losses advance over the skipped iteration, as in the peers' loops
    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt["metrics"]["iterations"] == 2 * len(engine.make_loader(run))
    o = run.optim
    assert seen["lr_next"] == pytest.approx(
        o.lr * (1 - (AT + 1) / seen["max_iterations"]) ** o.poly_power, rel=1e-12)
    assert all(math.isfinite(v) for v in seen["losses"].values())


@pytest.mark.parametrize("cut", [AT, AT + 1])  # preempted just before / just after the skip
def test_resumed_step_reproduces_the_skip(cut, tiny_config, tiny_splits, tmp_path, monkeypatch):
    tiny_config["datasets"]["digits"]["optim"]["epochs"] = 2
    run = make_run(tiny_config, tiny_splits, method="rw")
    overflow_at(monkeypatch, AT)
    engine.train_step(run, tmp_path / "ref.pt")
    out = tmp_path / "cut.pt"
    with monkeypatch.context() as patch:
        sigterm_at(patch, cut)
        with pytest.raises(Preempted):
            engine.train_step(run, out)
    engine.train_step(run, out)
    ref, again = load_checkpoint(tmp_path / "ref.pt"), load_checkpoint(out)
    for k, v in ref["model"].items():
        assert torch.equal(v, again["model"][k]), k
    for part in ("fisher", "score"):
        for k, v in ref["method_state"]["rw"][part].items():
            assert torch.equal(v, again["method_state"]["rw"][part][k]), (part, k)
    assert ref["metrics"]["overflow_skipped"] == again["metrics"]["overflow_skipped"] == 1
