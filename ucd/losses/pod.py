"""PLOP's Local POD (paper Eq. 18): multi-scale width/height pooled feature distillation.

For one feature map x (B, C, H, W), at each scale s the map is cut into an s x s grid of windows
(window size H // s by W // s; a remainder at the bottom/right is left out, as in PLOP). For
each window the activations are averaged over its width (giving C x h_win values) and over its
height (C x w_win values). All of these, for every window and scale, are concatenated into one
embedding per image. The layer loss is the Euclidean distance between the new and the old
embeddings, averaged over the batch; the total is the (weighted) mean over layers:

    L = (1 / L) * sum_l w_l * mean_b || Phi(x_l^new)_b - Phi(x_l^old)_b ||_2

Details taken from PLOP's public implementation (their defaults produced the published numbers;
the paper does not spell them out):
- activations are squared before pooling (``square=True``, PLOP's ``pod_prepro="pow"``);
- pooling is a mean; embeddings are not L2-normalised (``normalize=False``: PLOP forces it off
  for Local POD); the distance is the (non-squared) L2 norm per image, whereas Eq. 18 of the
  UCD paper writes a squared norm.
- PLOP's layers: the 4 ResNet stages, the ASPP output (weight 0.01 each) and the low-resolution
  logits (weight 0.0005 on VOC); for the logits, the new model's extra channels are first folded
  into background with ``fold_new_logits``. The caller multiplies the result by
  sqrt(#seen classes / #new classes) and passes the per-layer weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ucd.losses._checks import check_float, check_logits, check_n_old, upcast

__all__ = ["fold_new_logits", "local_pod", "pod_embedding"]


def _check_scales(scales: Sequence[int]) -> tuple[int, ...]:
    scales = tuple(scales)
    if not scales or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in scales):
        raise ValueError(f"scales must be a non-empty sequence of ints >= 1, got {scales}")
    return scales


def pod_embedding(x: Tensor, scales: Sequence[int] = (1, 2, 4), *, square: bool = True) -> Tensor:
    """Local POD embedding (B, D) of a feature map ``x`` (B, C, H, W)."""
    x = upcast(check_float("feature map", x, ndim=4))
    scales = _check_scales(scales)
    b, _, h, w = x.shape
    if max(scales) > min(h, w):
        raise ValueError(
            f"feature map of size {h}x{w} is too small for scale {max(scales)}: each window "
            "needs at least one pixel"
        )
    if square:
        x = x.pow(2)
    parts = []
    for s in scales:
        hk, wk = h // s, w // s
        # (B, C, s, hk, s, wk): window (i, j) is x[..., i*hk:(i+1)*hk, j*wk:(j+1)*wk]
        win = x[:, :, : s * hk, : s * wk].reshape(b, -1, s, hk, s, wk)
        width_pooled = win.mean(dim=5).permute(0, 2, 4, 1, 3)  # (B, s_i, s_j, C, hk)
        height_pooled = win.mean(dim=3).permute(0, 2, 3, 1, 4)  # (B, s_i, s_j, C, wk)
        parts.append(torch.cat([width_pooled.reshape(b, s, s, -1),
                                height_pooled.reshape(b, s, s, -1)], dim=3).reshape(b, -1))
    return torch.cat(parts, dim=1)


def local_pod(
    new_feats: Sequence[Tensor],
    old_feats: Sequence[Tensor],
    *,
    scales: Sequence[int] = (1, 2, 4),
    weights: Sequence[float] | None = None,
    square: bool = True,
    normalize: bool = False,
) -> Tensor:
    """Local POD distance between matching layers of the new and old models (see module doc).

    ``weights``: one factor per layer (default 1); the sum of weighted layer losses is divided
    by the number of layers. ``normalize=True`` L2-normalises each embedding (PODNet style).
    """
    new_feats, old_feats = list(new_feats), list(old_feats)
    if not new_feats or len(new_feats) != len(old_feats):
        raise ValueError(
            f"new_feats and old_feats must be non-empty lists of the same length, got "
            f"{len(new_feats)} and {len(old_feats)}"
        )
    if weights is None:
        weights = [1.0] * len(new_feats)
    weights = list(weights)
    if len(weights) != len(new_feats):
        raise ValueError(f"weights has {len(weights)} entries for {len(new_feats)} layers")
    total = None
    for i, (new, old, wgt) in enumerate(zip(new_feats, old_feats, weights, strict=True)):
        check_float(f"new_feats[{i}]", new, ndim=4)
        check_float(f"old_feats[{i}]", old, ndim=4)
        if new.shape != old.shape:
            raise ValueError(
                f"layer {i}: new {tuple(new.shape)} and old {tuple(old.shape)} shapes differ "
                "(fold extra logit channels with fold_new_logits first)"
            )
        a = pod_embedding(new, scales, square=square)
        b = pod_embedding(old, scales, square=square)
        if normalize:
            a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        layer = wgt * torch.linalg.vector_norm(a - b, dim=1).mean()
        total = layer if total is None else total + layer
    return total / len(new_feats)


def fold_new_logits(new_logits: Tensor, n_old: int) -> Tensor:
    """Sum the new classes' channels into background: (B, T, h, w) -> (B, n_old, h, w).

    PLOP's ``extra_channels="sum"``: channel 0 becomes z[0] + sum(z[n_old:]) (logits are
    summed, not their probabilities); old channels are kept as they are.
    """
    new_logits = check_logits("new_logits", new_logits)
    n_old = check_n_old(n_old, new_logits.shape[1])
    background = new_logits[:, :1] + new_logits[:, n_old:].sum(dim=1, keepdim=True)
    return torch.cat([background, new_logits[:, 1:n_old]], dim=1)
