"""Test protocol: classes not yet seen (ignored, ours; background, PLOP and UCD code), which
images are scored (all, ours; seen, the peers'), and whether background pixels are scored."""

from __future__ import annotations

import numpy as np
import pytest

import ucd.training.engine as engine
from tests.conftest import make_run
from ucd.data.step import make_dataset
from ucd.evaluation.evaluate import evaluate_checkpoint
from ucd.facts.config import ConfigError
from ucd.training.checkpoint import load_checkpoint, save_checkpoint


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


def test_what_the_model_calls_unseen_pixels_is_recorded(step0_ckpt):
    ignore, _ = evaluate_checkpoint(step0_ckpt, batch_size=12, device="cpu")
    background, _ = evaluate_checkpoint(step0_ckpt, batch_size=12, device="cpu",
                                        unseen="background")
    # independently: under "background" the unseen pixels join row 0 of the matrix with the
    # model's predictions, so row 0's growth is what the model calls them
    cm_i, cm_b = np.array(ignore["confusion_matrix"]), np.array(background["confusion_matrix"])
    grown = cm_b[0] - cm_i[0]
    n = int(grown.sum())
    assert ignore["unseen_pixels"] == background["unseen_pixels"] == n > 0
    assert ignore["unseen_as_background"] == pytest.approx(grown[0] / n)
    assert ignore["unseen_as_seen_class"] == pytest.approx(grown[1:].sum() / n)
    assert ignore["unseen_as_background"] + ignore["unseen_as_seen_class"] == pytest.approx(1)


def test_unknown_unseen_policy_is_refused(step0_ckpt):
    with pytest.raises(ValueError, match=r"unseen must be one of \['ignore', 'background'\]"):
        evaluate_checkpoint(step0_ckpt, device="cpu", unseen="zero")


def _full_val(tiny_digits):
    """Every validation image with labels masked as after step 0 of 5-5 (unseen -> 255)."""
    return make_dataset("digits", tiny_digits, "5-5", "disjoint", 0, "val", crop_size=32,
                        train_augment=False)


def test_seen_images_policy_scores_only_images_holding_a_seen_class(step0_ckpt, tiny_digits):
    every, _ = evaluate_checkpoint(step0_ckpt, batch_size=12, device="cpu")
    seen, _ = evaluate_checkpoint(step0_ckpt, batch_size=12, device="cpu", images="seen")
    assert every["images"] == "all" and seen["images"] == "seen"
    # independent selection, from the raw labels: images holding one of classes 1..5
    raw = make_dataset("digits", tiny_digits, "5-5", "disjoint", 0, "val", crop_size=32,
                       train_augment=False, all_classes=True)
    holds = [bool(np.isin(raw[i][1].numpy(), range(1, 6)).any()) for i in range(len(raw))]
    assert 0 < sum(holds) < len(raw)  # the tiny set has both kinds
    assert seen["n_val_images"] == sum(holds) and every["n_val_images"] == len(raw)
    # the dropped images hold only background (and ignored pixels) after step-0 masking: they
    # add to the background row only, one count per background pixel
    full = _full_val(tiny_digits)
    dropped_bg = sum(int((full[i][1] == 0).sum()) for i in range(len(full)) if not holds[i])
    cm_all, cm_seen = np.array(every["confusion_matrix"]), np.array(seen["confusion_matrix"])
    assert cm_all[1:].tolist() == cm_seen[1:].tolist()
    assert cm_all[0].sum() - cm_seen[0].sum() == dropped_bg > 0


def test_background_can_be_left_out_of_scoring(step0_ckpt, tiny_digits):
    run = load_checkpoint(step0_ckpt)["config"]
    run["eval"]["background"] = "ignore"
    ckpt = step0_ckpt.with_name("bg_ignored.pt")
    payload = load_checkpoint(step0_ckpt)
    save_checkpoint(ckpt, {k: v for k, v in payload.items()
                           if k not in ("format", "config_hash")} | {"config": run})
    ignored, _ = evaluate_checkpoint(ckpt, batch_size=12, device="cpu")
    scored, _ = evaluate_checkpoint(step0_ckpt, batch_size=12, device="cpu")
    assert ignored["background"] == "ignore" and scored["background"] == "score"
    cm_i, cm_s = np.array(ignored["confusion_matrix"]), np.array(scored["confusion_matrix"])
    assert cm_i[0].sum() == 0 and cm_s[0].sum() > 0  # no pixel labelled 0 is scored
    assert cm_i[1:].tolist() == cm_s[1:].tolist()
    assert ignored["background_iou"] is None


def test_background_ignored_with_unseen_as_background_is_refused(tiny_config, tiny_splits):
    tiny_config["datasets"]["digits"]["eval"] = {"background": "ignore", "unseen": "background"}
    with pytest.raises(ConfigError, match="eval.background: ignore .* eval.unseen: ignore"):
        make_run(tiny_config, tiny_splits)
