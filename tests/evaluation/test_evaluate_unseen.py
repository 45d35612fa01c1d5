"""Test-time policy for classes not yet seen: ignored (ours) or background (PLOP, UCD code)."""

from __future__ import annotations

import numpy as np
import pytest

import ucd.engine as engine
from tests.conftest import make_run
from ucd.data.step import make_dataset
from ucd.evaluation.evaluate import evaluate_checkpoint


@pytest.fixture(scope="module")
def step0_ckpt(tiny_digits, tiny_splits, tmp_path_factory):
    from tests.conftest import TINY_MODEL

    config = {"results": "results", "datasets": {"digits": {
        "root": str(tiny_digits), "model": TINY_MODEL,
        "optim": {"lr": 0.02, "epochs": 1, "batch_size": 8},
        "data": {"crop_size": 32, "num_workers": 0},
    }}}
    out = tmp_path_factory.mktemp("unseen") / "step0.pt"
    engine.train_step(make_run(config, tiny_splits, method="ft"), out)
    return out


def test_unseen_policy_is_applied_and_recorded(step0_ckpt, tiny_digits):
    ignore, _ = evaluate_checkpoint(step0_ckpt, batch_size=12, device="cpu")
    background, _ = evaluate_checkpoint(step0_ckpt, batch_size=12, device="cpu",
                                        unseen="background")
    assert ignore["unseen"] == "ignore" and background["unseen"] == "background"
    # independent count: pixels of classes 6..10 (unseen after step 0 of 5-5) in the val set
    full = make_dataset("digits", tiny_digits, "5-5", "disjoint", 0, "val", crop_size=32,
                        train_augment=False, all_classes=True)
    n_unseen = sum(int(np.isin(full[i][1].numpy(), range(6, 11)).sum()) for i in range(len(full)))
    assert n_unseen > 0
    cm_i, cm_b = np.array(ignore["confusion_matrix"]), np.array(background["confusion_matrix"])
    # the unseen pixels are scored, as ground-truth background, only under "background"
    assert cm_b.sum() - cm_i.sum() == n_unseen
    assert cm_b[0].sum() - cm_i[0].sum() == n_unseen
    assert cm_b[1:].tolist() == cm_i[1:].tolist()


def test_unknown_unseen_policy_is_refused(step0_ckpt):
    with pytest.raises(ValueError, match=r"unseen must be one of \['ignore', 'background'\]"):
        evaluate_checkpoint(step0_ckpt, device="cpu", unseen="zero")
