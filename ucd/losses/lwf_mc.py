"""LwF-MC (iCaRL-style multi-class distillation): sigmoid outputs instead of a softmax.

Two terms, as LwF-MC is run by MiB (whose numbers the paper's tables reuse):

- ``multilabel_bce``: the classification term. Each channel is a binary classifier trained with
  binary cross-entropy against the one-hot label; summed over channels, averaged over pixels
  whose label is not ``ignore_index``.
- ``lwf_mc_loss``: the distillation term. Binary cross-entropy between the new model's old
  channels and the old model's sigmoids as soft targets, summed over the old channels and
  averaged over every pixel (MiB: ``n_old * BCEWithLogitsLoss(mean)``). Weight 10 in the
  protocol, applied by the caller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ucd.losses._checks import IGNORE_INDEX, check_labels, check_logits, check_old_new

__all__ = ["lwf_mc_loss", "multilabel_bce"]


def lwf_mc_loss(new_logits: Tensor, old_logits: Tensor) -> Tensor:
    """BCE of ``new_logits[:, :n_old]`` against ``sigmoid(old_logits)``: class sum, pixel mean."""
    new, old = check_old_new(new_logits, old_logits)
    n_old = old.shape[1]
    bce = F.binary_cross_entropy_with_logits(
        new[:, :n_old], torch.sigmoid(old), reduction="none"
    )
    return bce.sum(dim=1).mean()


def multilabel_bce(logits: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Per-channel BCE of ``logits`` (B, T, H, W) against one-hot ``labels`` (B, H, W).

    Summed over channels, averaged over non-ignored pixels; zero (with gradient) if none.
    """
    logits = check_logits("logits", logits)
    b, t, h, w = logits.shape
    labels = check_labels(labels, (b, h, w), n_classes=t, ignore_index=ignore_index)
    valid = labels != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    target = F.one_hot(torch.where(valid, labels, 0), t).permute(0, 3, 1, 2).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=1)
    return bce[valid].mean()
