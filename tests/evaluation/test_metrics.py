"""Metrics against an independent computation on hand-built predictions."""

import numpy as np
import pytest
import torch

from ucd.data.tasks import list_tasks
from ucd.evaluation import confusion_matrix, mean_iou, per_class_iou, summarize
from ucd.evaluation.records import paper_columns
from ucd.reporting.tables import column_classes


def _iou_numpy(pred, gt, n):
    """Independent: set-based IoU per class over valid pixels (255 skipped)."""
    valid = gt != 255
    out = []
    for c in range(n):
        inter = np.sum((pred == c) & (gt == c) & valid)
        union = np.sum(((pred == c) | (gt == c)) & valid)
        out.append(None if np.sum((gt == c) & valid) == 0 else inter / union)
    return out


def test_hand_built_case():
    gt = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 3, 1]])
    cm = confusion_matrix(pred, gt, 4)
    assert cm.sum() == 6  # ignore pixels skipped
    iou = per_class_iou(cm)
    # class 0: TP 1, FP 1 (gt 2 -> 0), FN 1 (gt 0 -> 1): 1/3
    # class 1: TP 2, FP 1, FN 0: 2/3; class 2: TP 1, FN 1: 1/2; class 3: no GT -> None
    assert iou == pytest.approx([1 / 3, 2 / 3, 1 / 2, None])
    s = summarize(cm, base_classes=[1], new_classes=[2, 3])
    assert s["miou_old"] == pytest.approx(2 / 3)
    assert s["miou_new"] == pytest.approx(1 / 2)  # class 3 has no GT: left out though predicted
    assert s["miou_all"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert s["background_iou"] == pytest.approx(1 / 3)


def test_random_against_numpy():
    rng = np.random.default_rng(0)
    n = 6
    gt = rng.integers(0, n, size=(3, 17, 19))
    gt[rng.random(gt.shape) < 0.1] = 255
    gt[gt == 4] = 5  # class 4 has no ground truth
    pred = np.where(
        rng.random(gt.shape) < 0.6, np.where(gt == 255, 0, gt), rng.integers(0, n, gt.shape)
    )
    cm = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(gt), n)
    ours = per_class_iou(cm)
    ref = _iou_numpy(pred, gt, n)
    assert ours[4] is None and ref[4] is None
    for a, b in zip(ours, ref):
        if b is not None:
            assert a == pytest.approx(b)
    assert mean_iou(ours, range(1, n)) == pytest.approx(
        np.mean([v for v in ref[1:] if v is not None])
    )


def test_all_is_the_class_weighted_mean_of_old_and_new():
    # docs/protocol.md check: MiB 15-5 disjoint, (15 x 71.8 + 5 x 43.3) / 20 = 64.7
    iou = [0.9] + [0.718] * 15 + [0.433] * 5
    n = len(iou) + 1  # the last class is a sink for misses: no ground truth, in no mean
    cm = torch.zeros(n, n, dtype=torch.int64)
    for c, v in enumerate(iou):  # exactly these IoUs: TP = v * 1000, FN = (1 - v) * 1000
        tp = round(v * 1000)
        cm[c, c] = tp
        cm[c, n - 1] = 1000 - tp
    s = summarize(cm, base_classes=list(range(1, 16)), new_classes=list(range(16, 21)))
    assert round(s["miou_all"] * 100, 1) == pytest.approx(64.7, abs=0.06)


def test_label_out_of_range_is_refused():
    with pytest.raises(ValueError, match="label value 7 outside 0..3"):
        confusion_matrix(torch.zeros(2, dtype=torch.long), torch.tensor([7, 1]), 4)


@pytest.mark.parametrize("task", list_tasks(), ids=lambda t: f"{t.dataset}/{t.name}")
def test_metrics_columns_are_the_tables_columns_and_never_hold_background(task):
    """metrics.json's old/new classes (ucd.evaluation.records) and the tables' columns
    (ucd.reporting.tables) are two derivations from tasks.yaml: they must agree at every step,
    and background (ADE's 'other', Cityscapes' void) is in neither. Planted in a copy, ADE's
    class 0 kept among the old classes of metrics.json passed every other test."""
    for k in range(task.n_steps):
        old, new = paper_columns(task, k)
        assert old == column_classes(task.dataset, task.name, "old", step=k)
        assert new == column_classes(task.dataset, task.name, "new", step=k)
        assert 0 not in old + new
        assert sorted(old + new) == column_classes(task.dataset, task.name, "all", step=k)
