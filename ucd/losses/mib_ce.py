"""MiB's unbiased cross-entropy (paper Eq. 13-14): background absorbs the old classes.

At step k the ground truth marks old classes as background, so the probability of "background"
is taken as the summed probability of background and every old class:

    log p~(0)  = logsumexp(z[0:n_old]) - logsumexp(z)
    log p~(c)  = z[c] - logsumexp(z)                    for new classes c >= n_old
    L = -mean over non-ignored pixels of log p~(label)

Labels of old classes (1 <= y < n_old) count as background, as in MiB's implementation.
Reduction: mean over pixels whose label is not ``ignore_index`` (MiB's training loop divides by
every pixel instead, ignored ones included; the two differ by the fraction of ignored pixels).
Mapping 255 to 0 before this loss is a label policy of the method, not done here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ucd.losses._checks import IGNORE_INDEX, check_labels, check_logits, check_n_old

__all__ = ["unbiased_cross_entropy", "unbiased_log_probs"]


def unbiased_log_probs(logits: Tensor, n_old: int) -> Tensor:
    """Log-probs (B, 1 + T - n_old, H, W): channel 0 = background + old classes, then new ones."""
    logits = check_logits("logits", logits)
    n_old = check_n_old(n_old, logits.shape[1])
    den = torch.logsumexp(logits, dim=1, keepdim=True)
    background = torch.logsumexp(logits[:, :n_old], dim=1, keepdim=True)
    return torch.cat([background, logits[:, n_old:]], dim=1) - den


def unbiased_cross_entropy(
    logits: Tensor, labels: Tensor, n_old: int, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """MiB's unbiased CE of ``logits`` (B, T, H, W) vs ``labels`` (B, H, W); ``n_old`` = T_{k-1}.

    Returns a scalar; zero (with gradient) when every pixel is ignored.
    """
    logits = check_logits("logits", logits)
    n_old = check_n_old(n_old, logits.shape[1])
    b, t, h, w = logits.shape
    labels = check_labels(labels, (b, h, w), n_classes=t, ignore_index=ignore_index)
    log_p = unbiased_log_probs(logits, n_old)
    # class c >= n_old -> channel c - n_old + 1; background and old classes -> channel 0
    target = torch.where(labels >= n_old, labels - n_old + 1, torch.zeros_like(labels))
    valid = labels != ignore_index
    target = torch.where(valid, target, torch.full_like(labels, ignore_index))
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.nll_loss(log_p, target, ignore_index=ignore_index, reduction="mean")
