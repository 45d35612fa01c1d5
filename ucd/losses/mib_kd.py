"""MiB's unbiased knowledge distillation (paper Eq. 15-16): new classes count as background.

The old model could not know the classes added at step k, so for it they were background. The
new model's background probability is therefore the sum over background and the new classes:

    log p^(0) = logsumexp(z[0], z[n_old:]) - logsumexp(z)
    log p^(c) = z[c] - logsumexp(z)                          for old classes 1 <= c < n_old
    q = softmax(alpha * z_old)
    L = mean over pixels of  -(1 / n_old) * sum_{c < n_old} q(c) log p^(c)

The 1 / n_old factor (``class_mean=True``) is MiB's implementation ("average on the classes");
the weights of the paper's tables (lambda_kd = 10, or 100 for 15-1) were tuned with it. Set
``class_mean=False`` for the plain sum of Eq. 15. ``alpha`` multiplies the old logits only
(MiB's ``--alpha``, 1 by default). Every pixel counts: no labels are involved.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ucd.losses._checks import check_old_new

__all__ = ["unbiased_kd"]


def unbiased_kd(
    new_logits: Tensor, old_logits: Tensor, *, alpha: float = 1.0, class_mean: bool = True
) -> Tensor:
    """Unbiased KD between ``new_logits`` (B, T, H, W) and ``old_logits`` (B, n_old, H, W)."""
    new, old = check_old_new(new_logits, old_logits)
    n_old = old.shape[1]
    den = torch.logsumexp(new, dim=1)
    background = torch.logsumexp(torch.cat([new[:, :1], new[:, n_old:]], dim=1), dim=1) - den
    old_classes = new[:, 1:n_old] - den.unsqueeze(1)
    q = torch.softmax(old * alpha, dim=1)
    per_pixel = q[:, 0] * background + (q[:, 1:] * old_classes).sum(dim=1)
    if class_mean:
        per_pixel = per_pixel / n_old
    return -per_pixel.mean()
