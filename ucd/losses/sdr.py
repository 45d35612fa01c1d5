"""SDR's latent-space losses (Michieli & Zanuttigh, CVPR 2021): prototypes, contrast, sparsity.

All functions take encoder features (B, C, h, w) (SDR uses the ResNet output, 2048-d) and
integer maps (B, h, w) already at feature resolution (the caller samples them; SDR's code
takes the top-left pixel of each cell, ``ucd.methods.terms.common.labels_at`` its centre),
255 = ignore. Prototypes are a (N_classes, C) tensor of running class means.

- ``update_prototypes``: cumulative running mean per class, p <- (n p + sum f) / (n + m), from
  the current batch (detached). SDR skips background in overlapped runs and at steps >= 1
  (it may hide old classes): pass ``skip_background=True`` then.
- ``prototype_matching_loss`` (L_pm): for each old class c, the batch mean of the features of
  the pixels pseudo-labelled c (ground truth background, old model's prediction c >= 1) is
  pulled to the stored prototype p_c (detached) with an MSE over channels; mean over the old
  classes present (SDR's ``loss_de_prototypes_sumafter``, its default).
- ``attraction_loss`` (contrastive attraction): for each class present in the labels, the MSE
  between each of its features and its prototype; mean over the classes present.
- ``repulsion_loss`` (contrastive repulsion): mean over ordered pairs of distinct classes present
  of 1 / ||mu_i - mu_j|| between the batch class means (0 with fewer than two classes).
- ``sparsity_loss`` (L_fs): features divided by the largest activation of their class in the
  batch, then per pixel sum_c exp(f~_c) / sum_c f~_c (SDR's "max_maskedforclass",
  "exponential", "ratio"); mean over non-ignored pixels with a non-zero activation. Meant for
  non-negative (post-ReLU) features, as SDR's encoder output.

Defaults of SDR's method (its argparser): unbiased CE + unbiased KD weight 100, L_pm 1e-2,
attraction 1e-3, repulsion 1e-3, sparsity 1e-3. Deviations from SDR's code, which are bugs
there: features are gathered per pixel (SDR's masked ``view(C, -1)`` mixes channels when the
batch has more than one image), the attraction is averaged once over classes (SDR divides
inside its class loop), ignored pixels are left out of the sparsity loss (SDR treats 255 as a
class) and so are all-zero pixels (their ratio is exp(0)*C / 1e-15: a huge constant with zero
gradient through the ReLU).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ucd.losses._checks import IGNORE_INDEX, check_float, check_labels, upcast

__all__ = [
    "attraction_loss",
    "class_means",
    "prototype_matching_loss",
    "repulsion_loss",
    "sparsity_loss",
    "update_prototypes",
]


def _check_maps(features: object, labels: object, ignore_index: int, name: str = "labels"):
    features = upcast(check_float("features", features, ndim=4))
    b, _, h, w = features.shape
    labels = check_labels(labels, (b, h, w), ignore_index=ignore_index, name=name)
    return features, labels


def _check_prototypes(prototypes: object, channels: int) -> Tensor:
    prototypes = check_float("prototypes", prototypes, ndim=2)
    if prototypes.shape[1] != channels:
        raise ValueError(
            f"prototypes have {prototypes.shape[1]} channels, features have {channels}"
        )
    return prototypes


def _present(labels: Tensor, ignore_index: int, skip_background: bool) -> list[int]:
    classes = [int(c) for c in torch.unique(labels) if int(c) != ignore_index]
    return [c for c in classes if not (skip_background and c == 0)]


def _flat(features: Tensor) -> Tensor:
    """(B, C, h, w) -> (B*h*w, C), pixels in (b, y, x) order, matching labels.reshape(-1)."""
    return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])


def class_means(
    features: Tensor,
    labels: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    skip_background: bool = False,
) -> dict[int, Tensor]:
    """Batch mean feature (C,) of every class present in ``labels`` (differentiable)."""
    features, labels = _check_maps(features, labels, ignore_index)
    flat, lab = _flat(features), labels.reshape(-1)
    return {c: flat[lab == c].mean(dim=0) for c in _present(labels, ignore_index, skip_background)}


@torch.no_grad()
def update_prototypes(
    features: Tensor,
    labels: Tensor,
    prototypes: Tensor,
    counts: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    skip_background: bool = False,
) -> tuple[Tensor, Tensor]:
    """New (prototypes, counts): running means updated with the classes present in the batch."""
    features, labels = _check_maps(features, labels, ignore_index)
    prototypes = _check_prototypes(prototypes, features.shape[1])
    if not isinstance(counts, Tensor) or counts.shape != (prototypes.shape[0],):
        raise ValueError(f"counts must be a tensor of shape ({prototypes.shape[0]},)")
    flat, lab = _flat(features.detach()), labels.reshape(-1)
    prototypes, counts = prototypes.detach().clone(), counts.clone()
    for c in _present(labels, ignore_index, skip_background):
        if c >= prototypes.shape[0]:
            raise ValueError(f"class {c} has no prototype row (prototypes: {prototypes.shape[0]})")
        feats = flat[lab == c]
        n = counts[c].to(prototypes.dtype)
        prototypes[c] = (feats.sum(dim=0) + n * prototypes[c]) / (n + feats.shape[0])
        counts[c] += feats.shape[0]
    return prototypes, counts


def prototype_matching_loss(
    features: Tensor,
    labels: Tensor,
    old_pred: Tensor,
    prototypes: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """L_pm: batch means of the old classes (pseudo-labelled on background) vs prototypes."""
    features, labels = _check_maps(features, labels, ignore_index)
    b, c, h, w = features.shape
    old_pred = check_labels(old_pred, (b, h, w), ignore_index=ignore_index, name="old_pred")
    prototypes = _check_prototypes(prototypes, c)
    pseudo = torch.where(labels == 0, old_pred, torch.zeros_like(old_pred))
    means = class_means(features, pseudo, ignore_index=ignore_index, skip_background=True)
    if not means:
        return features.sum() * 0.0
    if max(means) >= prototypes.shape[0]:
        raise ValueError(f"old_pred has class {max(means)} without a prototype row")
    proto = prototypes.detach()
    return torch.stack([(m - proto[k]).pow(2).mean() for k, m in means.items()]).mean()


def attraction_loss(
    features: Tensor,
    labels: Tensor,
    prototypes: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    skip_background: bool = False,
) -> Tensor:
    """Mean over present classes of the MSE between the class's features and its prototype."""
    features, labels = _check_maps(features, labels, ignore_index)
    prototypes = _check_prototypes(prototypes, features.shape[1])
    flat, lab = _flat(features), labels.reshape(-1)
    classes = _present(labels, ignore_index, skip_background)
    if not classes:
        return features.sum() * 0.0
    if max(classes) >= prototypes.shape[0]:
        raise ValueError(f"labels have class {max(classes)} without a prototype row")
    terms = [(flat[lab == k] - prototypes[k]).pow(2).mean() for k in classes]
    return torch.stack(terms).mean()


def repulsion_loss(
    features: Tensor,
    labels: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    skip_background: bool = False,
) -> Tensor:
    """Mean of 1 / ||mu_i - mu_j|| over pairs of distinct classes present (batch means)."""
    means = class_means(
        features, labels, ignore_index=ignore_index, skip_background=skip_background
    )
    if len(means) < 2:
        return features.sum() * 0.0
    mu = torch.stack(list(means.values()))
    n = mu.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=mu.device)
    diff = mu.unsqueeze(0) - mu.unsqueeze(1)
    dist = torch.linalg.vector_norm(diff[off], dim=1)
    return (1.0 / dist).mean()


def sparsity_loss(
    features: Tensor,
    labels: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    eps: float = 1e-15,
) -> Tensor:
    """L_fs: per-pixel sum exp(f~) / sum f~ of class-max-normalised features (see module doc)."""
    features, labels = _check_maps(features, labels, ignore_index)
    flat, lab = _flat(features), labels.reshape(-1)
    ratios = []
    for k in _present(labels, ignore_index, skip_background=False):
        feats = flat[lab == k]
        normed = feats / (feats.max() + eps)
        summed = normed.sum(dim=1)
        keep = summed > 0
        ratios.append(torch.exp(normed[keep]).sum(dim=1) / (summed[keep] + eps))
    values = torch.cat(ratios) if ratios else features.new_zeros(0)
    if values.numel() == 0:
        return features.sum() * 0.0
    return values.mean()
