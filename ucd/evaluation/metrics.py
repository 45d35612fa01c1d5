"""Confusion matrix, per-class IoU and the paper's old / new / all columns.

One confusion matrix is accumulated over the whole validation set (pixels labelled 255 are
skipped). A class without ground-truth pixels has no IoU and is left out of every mean, even if
it was predicted. The paper's columns leave the background out (docs/protocol.md, "Metric").
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, n_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """Counts ``cm[t, p]`` of pixels with ground truth ``t`` predicted as ``p`` (int64)."""
    valid = target != ignore_index
    t = target[valid].long()
    p = pred[valid].long()
    if t.numel() and (t.max() >= n_classes or t.min() < 0):
        raise ValueError(f"label value {int(t.max())} outside 0..{n_classes - 1} (and 255)")
    idx = t * n_classes + p
    return torch.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_iou(cm: torch.Tensor) -> list[float | None]:
    """IoU = TP / (TP + FP + FN) per class; None where the class has no ground-truth pixel."""
    cm = cm.double()
    tp = cm.diag()
    gt = cm.sum(1)
    pred = cm.sum(0)
    out: list[float | None] = []
    for c in range(cm.shape[0]):
        out.append(None if gt[c] == 0 else float(tp[c] / (gt[c] + pred[c] - tp[c])))
    return out


def mean_iou(iou: list[float | None], classes: Iterable[int]) -> float | None:
    """Mean IoU over ``classes``, skipping classes without IoU; None if none has one."""
    vals = [iou[c] for c in classes if c < len(iou) and iou[c] is not None]
    return sum(vals) / len(vals) if vals else None


def summarize(
    cm: torch.Tensor, *, base_classes: list[int], new_classes: list[int]
) -> dict[str, object]:
    """Per-class IoU and the paper's columns: old (base, no bg), new (added), all (no bg)."""
    iou = per_class_iou(cm)
    seen = sorted(set(base_classes) | set(new_classes))
    return {
        "iou": {str(c): v for c, v in enumerate(iou)},
        "background_iou": iou[0],
        "miou_old": mean_iou(iou, base_classes),
        "miou_new": mean_iou(iou, new_classes),
        "miou_all": mean_iou(iou, [c for c in seen if c != 0]),
        "miou_all_with_bg": mean_iou(iou, seen if 0 in seen else [0, *seen]),
        "pixel_accuracy": float(cm.diag().sum() / cm.sum()) if cm.sum() > 0 else math.nan,
    }
