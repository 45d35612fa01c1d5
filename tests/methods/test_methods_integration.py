"""Every method trains two steps on the tiny benchmark; distillation keeps the old model frozen."""

from __future__ import annotations

import math

import pytest
import torch

import ucd.training.engine as engine
from tests.conftest import make_run
from ucd.evaluation.evaluate import evaluate_checkpoint
from ucd.methods import get_method, list_methods
from ucd.training.checkpoint import load_checkpoint

METHODS = [
    "ft", "joint", "pi", "ewc", "rw", "lwf", "lwf_mc", "ilt", "ilt_dagger", "sdr", "mib",
    "mib_sdr", "ucd", "ucd_official", "mib_ucd", "plop", "plop_ucd", "mib_segcon", "mib_pixcon",
    "mib_cd", "mib_ucd_bg", "mib_ucd_oldnew",
]


def test_every_method_of_the_tables_is_registered():
    assert set(METHODS) <= set(list_methods())


@pytest.fixture(scope="module")
def shared_step0(tiny_digits, tiny_splits, tmp_path_factory):
    """One plain-CE step 0, reused by every method with ``step0: shared``."""
    import copy

    from tests.conftest import TINY_MODEL

    config = copy.deepcopy({
        "results": "results",
        "datasets": {"digits": {
            "root": str(tiny_digits), "model": TINY_MODEL,
            "optim": {"lr": 0.02, "epochs": 1, "batch_size": 8},
            "incremental": {"optim": {"lr": 0.01}},
            "data": {"crop_size": 32, "num_workers": 0},
        }},
    })
    out = tmp_path_factory.mktemp("shared") / "step0.pt"
    engine.train_step(make_run(config, tiny_splits, method="ft"), out)
    return config, out


def _finite_metrics(ckpt) -> dict:
    metrics, _ = evaluate_checkpoint(ckpt, batch_size=12)
    for key in ("miou_old", "miou_all", "background_iou"):
        assert metrics[key] is not None and math.isfinite(metrics[key]), (key, metrics[key])
    return metrics


@pytest.mark.parametrize("method", METHODS)
def test_two_steps(method, shared_step0, tiny_splits, tmp_path, monkeypatch):
    config, step0 = shared_step0
    m = get_method(method)
    run0 = make_run(config, tiny_splits, method=method, step=0)
    if m.joint:
        engine.train_step(run0, tmp_path / "joint.pt")
        _finite_metrics(tmp_path / "joint.pt")
        return
    if m.step0 == "own":
        step0 = tmp_path / "step0.pt"
        engine.train_step(run0, step0)
        state = load_checkpoint(step0)["method_state"]
        assert set(state) >= {t for t in m.terms if t in ("ewc", "pi", "rw", "sdr_attraction")}

    captured = {}
    prepare = engine.prepare_model

    def spy(run, prev):
        model, old, state = prepare(run, prev)
        captured["old"] = old
        return model, old, state

    monkeypatch.setattr(engine, "prepare_model", spy)
    run1 = make_run(config, tiny_splits, method=method, step=1)
    train_metrics = engine.train_step(run1, tmp_path / "step1.pt", prev=step0)
    for name, value in train_metrics["loss_history"][-1].items():
        assert math.isfinite(value), (name, value)
    metrics = _finite_metrics(tmp_path / "step1.pt")
    assert metrics["miou_new"] is not None and math.isfinite(metrics["miou_new"])

    old = captured["old"]
    assert (old is not None) == m.needs_old_model(1)
    if old is not None:  # frozen: weights and BN statistics equal those of the previous step
        before = load_checkpoint(step0)["model"]
        after = old.state_dict()
        assert set(after) == set(before)
        for key, value in before.items():
            assert torch.equal(after[key].cpu(), value), key
        assert not old.training
