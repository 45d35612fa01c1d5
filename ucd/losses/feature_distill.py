"""Encoder feature distillation: ILT (ICCVW 2019) and the masked / cosine variant of ILT-dagger.

- ``feature_mse``: ILT's L''_D, the mean squared error between the new and the old encoder
  outputs (mean over every element, i.e. ``nn.MSELoss()``), weight 100 in the protocol.
- ``masked_feature_distill``: the variant for ILT-dagger (Michieli & Zanuttigh, CVIU 2021,
  "Knowledge distillation for incremental learning in semantic segmentation", arXiv 1911.03462).
  The text of the CVIU paper could not be retrieved, so its exact changes are NOT verified
  here. What is verifiable is the same authors' public code (the SDR repository, whose encoder
  distillation cites arXiv 1911.03462): the feature loss can (a) be restricted to pixels whose
  label is background or an old class (label < n_old, at feature resolution; new-class and
  ignored pixels are left free to change) and (b) use ``1 - cosine similarity`` over channels
  instead of the squared error. Both options are implemented; which combination produced the
  ILT-dagger rows of the paper's tables is unknown. With ``distance="mse"`` and no mask this
  reduces to ``feature_mse``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ucd.losses._checks import IGNORE_INDEX, check_float, check_labels, upcast

__all__ = ["feature_mse", "masked_feature_distill"]


def _check_pair(new_feat: object, old_feat: object) -> tuple[Tensor, Tensor]:
    new = check_float("new_feat", new_feat)
    old = check_float("old_feat", old_feat)
    if new.shape != old.shape:
        raise ValueError(
            f"new_feat {tuple(new.shape)} and old_feat {tuple(old.shape)} must have the same shape"
        )
    return upcast(new), upcast(old)


def feature_mse(new_feat: Tensor, old_feat: Tensor) -> Tensor:
    """Mean squared error between two feature maps of the same shape (ILT's L''_D)."""
    new, old = _check_pair(new_feat, old_feat)
    return F.mse_loss(new, old, reduction="mean")


def masked_feature_distill(
    new_feat: Tensor,
    old_feat: Tensor,
    labels: Tensor | None = None,
    n_old: int | None = None,
    *,
    distance: Literal["mse", "cosine"] = "mse",
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Feature distillation on (B, C, h, w) maps, optionally only where ``labels < n_old``.

    ``labels`` (B, h, w) at feature resolution (sampling them is the caller's).
    ``distance="mse"``: mean squared error over the kept pixels and all channels;
    ``"cosine"``: mean over the kept pixels of 1 - cos(new, old) along channels.
    Zero (with gradient) when no pixel is kept.
    """
    new, old = _check_pair(new_feat, old_feat)
    if new.dim() != 4:
        raise ValueError(f"new_feat must be (B, C, h, w), got shape {tuple(new.shape)}")
    if distance not in ("mse", "cosine"):
        raise ValueError(f"distance must be 'mse' or 'cosine', got {distance!r}")
    b, _, h, w = new.shape
    if (labels is None) != (n_old is None):
        raise ValueError("labels and n_old must be given together (or neither, for no mask)")
    if labels is None:
        keep = torch.ones((b, h, w), dtype=torch.bool, device=new.device)
    else:
        labels = check_labels(labels, (b, h, w), ignore_index=ignore_index)
        if isinstance(n_old, bool) or not isinstance(n_old, int) or n_old < 1:
            raise ValueError(f"n_old must be an int >= 1, got {n_old!r}")
        keep = (labels < n_old) & (labels != ignore_index)
    if not bool(keep.any()):
        return new.sum() * 0.0
    if distance == "mse":
        per_pixel = (new - old).pow(2).mean(dim=1)
    else:
        per_pixel = 1.0 - F.cosine_similarity(new, old, dim=1)
    return per_pixel[keep].mean()
