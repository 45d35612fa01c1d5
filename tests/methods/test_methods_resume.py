"""Terms with state (importance, thresholds, prototypes) survive a preempted and resumed step."""

from __future__ import annotations

import pytest
import torch

import ucd.training.engine as engine
from tests.conftest import make_run
from tests.faults import sigterm_at
from ucd.methods import get_method
from ucd.training.checkpoint import load_checkpoint
from ucd.training.resume import Preempted


def _equal(a, b, where="state"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("method", ["ewc", "pi", "rw", "plop", "mib_sdr"])
def test_step_one_resumes_bit_identical(method, tiny_config, tiny_splits, tmp_path, monkeypatch):
    tiny_config["datasets"]["digits"]["optim"]["epochs"] = 2
    m = get_method(method)
    step0 = tmp_path / "step0.pt"
    engine.train_step(make_run(tiny_config, tiny_splits, method=method if m.step0 == "own"
                               else "ft"), step0)
    run1 = make_run(tiny_config, tiny_splits, method=method, step=1)
    engine.train_step(run1, tmp_path / "ref.pt", prev=step0)
    out = tmp_path / "cut.pt"
    with monkeypatch.context() as patch:
        sigterm_at(patch, 3)
        with pytest.raises(Preempted):
            engine.train_step(run1, out, prev=step0)
    engine.train_step(run1, out, prev=step0)
    ref, cut = load_checkpoint(tmp_path / "ref.pt"), load_checkpoint(out)
    _equal(ref["model"], cut["model"], "model")
    _equal(ref["method_state"], cut["method_state"], "method_state")
    assert set(ref["method_state"]) >= {t for t in m.terms
                                        if t in ("ewc", "pi", "rw", "plop_pseudo",
                                                 "sdr_attraction")}
