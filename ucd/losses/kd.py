"""LwF's knowledge distillation on the old classes' probabilities (LwF; ILT's output term).

The new model's scores are restricted to the old channels and renormalised; the old model's
softmax is the soft target:

    p = softmax(z_new[:, :n_old] / T),  q = softmax(z_old / T)
    L = mean over pixels of  -(1 / n_old) * sum_c q(c) log p(c)

The 1 / n_old factor (``class_mean=True``) follows MiB's implementation, with which the weight
of the tables (100 for LwF and ILT) was set. No T^2 factor is applied: the protocol uses T = 1.
Every pixel counts: no labels are involved. The weight is applied by the caller.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ucd.losses._checks import check_old_new

__all__ = ["kd_loss"]


def kd_loss(
    new_logits: Tensor,
    old_logits: Tensor,
    *,
    temperature: float = 1.0,
    class_mean: bool = True,
) -> Tensor:
    """KD of ``old_logits`` (B, n_old, H, W) into the first n_old channels of ``new_logits``."""
    new, old = check_old_new(new_logits, old_logits)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n_old = old.shape[1]
    log_p = torch.log_softmax(new[:, :n_old] / temperature, dim=1)
    q = torch.softmax(old / temperature, dim=1)
    per_pixel = (q * log_p).sum(dim=1)
    if class_mean:
        per_pixel = per_pixel / n_old
    return -per_pixel.mean()
