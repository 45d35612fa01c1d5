"""Uncertainty-aware contrastive distillation (UCD, Eq. 1-11) and its ablation variants.

All losses here select features from dense maps and hand them to the chunked kernel
``ucd.losses.contrastive.contrastive_loss`` (exact, memory O(chunk x (N + M))):

- ``ucd_loss``: UCD (Eq. 11), CD (Eq. 7, ``uncertainty=False``) and the Table 7 variants
  (``include_background``, ``old_includes_new``);
- ``pixel_contrastive_loss`` / ``segment_contrastive_loss``: the Table 6 rows "pixel contrastive"
  and "segment contrastive" (current step's ground truth only, no old model).

``ucd_loss``, at feature resolution h x w:

- ESM (Eq. 1-2): the label where it is neither 0 nor 255, else argmax of ``old_probs``.
  Pixels labelled 255 take part in nothing.
- Anchors R (Eq. 3): new features where ESM != 0. Old contrast set S (Eq. 4): old features
  where ESM is neither 0 nor in Y^k.
- Positives of anchor a (Eq. 5): the other pixels of R of a's ESM class (a excluded) and the
  pixels of S of that class (a's own position included); negatives (Eq. 6): every member of
  R and S of another class.
- L_lc (Eq. 8) = cos(f_a, f+)/tau - log sum over the negatives of exp(cos(f_a, f-)/tau).
- sigma (Eq. 9-10) = P-bar_a . P-bar_g for every positive pair (new-new and new-old), with
  P-bar the one-hot of the label where the label is a class and [P_old, 0...0] (length T_k)
  where the label is 0; sigma = 1 when ``uncertainty=False``.
- Eq. 11: mean over anchors of -1/|G(a)| sum_g sigma L_lc, leaving out anchors with no
  positive or no negative; 0 (graph-attached) if none remains.

Table 7 variants: ``include_background=True`` adds the pixels whose ESM is 0 to R and S as a
class of their own (class 0); their P-bar is [P_old, 0...0] as for any label-0 pixel, so
sigma between two background pixels is the old model's probability that both are the same
class. ``old_includes_new=True`` also puts the pixels of Y^k into S (their P-bar is one-hot).
The defaults are Eq. 3-4 (the table's last row). A label of an old class (1..T_old-1), which
the step's masked ground truth normally does not contain, is kept as its ESM with a one-hot
P-bar and, not being in Y^k, joins S.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from ucd.losses.contrastive import DEFAULT_MEMORY_BUDGET, contrastive_loss

__all__ = [
    "extended_semantic_map",
    "pixel_contrastive_loss",
    "segment_contrastive_loss",
    "ucd_loss",
]

IGNORE_INDEX = 255


def _check_maps(features: Tensor, labels: Tensor) -> None:
    if features.dim() != 4 or not features.is_floating_point():
        raise ValueError(
            f"features must be a float tensor (B, C, h, w), got {features.dtype} "
            f"{tuple(features.shape)}"
        )
    b, _, h, w = features.shape
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.shape != (b, h, w):
        raise ValueError(
            f"labels must be an integer tensor (B, h, w) = {(b, h, w)} at feature resolution "
            f"(sample labels, never interpolate them), got {labels.dtype} {tuple(labels.shape)}"
        )
    bad = (labels < 0) & (labels != IGNORE_INDEX)
    if bool(bad.any()):
        raise ValueError(f"labels must be class indices >= 0 or {IGNORE_INDEX} (ignore)")


def _flat(x: Tensor) -> Tensor:
    """(B, C, h, w) -> (B*h*w, C), pixels in (b, y, x) order."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def extended_semantic_map(labels: Tensor, old_probs: Tensor) -> Tensor:
    """ESM (Eq. 1-2): the label where it is neither 0 nor 255, else the old model's argmax.

    ``labels`` (B, h, w) with ``old_probs`` (B, T_old, h, w), or flat (n,) with (n, T_old).
    Pixels labelled 255 stay 255.
    """
    esm = torch.where(labels == 0, old_probs.argmax(1), labels)
    return esm.masked_fill(labels == IGNORE_INDEX, IGNORE_INDEX)


def _extended_probs(labels: Tensor, old_probs: Tensor, num_classes: int) -> Tensor:
    """P-bar (Eq. 9), rows for flat pixels: [P_old, 0...0] where the label is 0, else one-hot."""
    out = old_probs.new_zeros((labels.shape[0], num_classes))
    bg = labels == 0
    out[:, : old_probs.shape[1]] = old_probs * bg[:, None]
    gt = (~bg).nonzero().squeeze(1)
    out[gt, labels[gt]] = 1.0
    return out


def _check_ucd_inputs(features: Tensor, old_features: Tensor, labels: Tensor,
                      old_probs: Tensor, new_classes: Iterable[int]) -> tuple[int, int]:
    """Refuse inputs of the wrong shape or range; (T_old, T_k)."""
    _check_maps(features, labels)
    if old_features.shape != features.shape:
        raise ValueError(
            f"old_features must have the shape of features {tuple(features.shape)}, "
            f"got {tuple(old_features.shape)}"
        )
    b, _, h, w = features.shape
    if (
        old_probs.dim() != 4
        or not old_probs.is_floating_point()
        or old_probs.shape[0] != b
        or old_probs.shape[2:] != (h, w)
        or old_probs.shape[1] < 1
    ):
        raise ValueError(
            f"old_probs must be a float tensor (B, T_old, h, w) with (B, h, w) = {(b, h, w)}, "
            f"got {old_probs.dtype} {tuple(old_probs.shape)}"
        )
    if old_probs.numel() and bool(old_probs.min() < 0):
        raise ValueError("old_probs must be probabilities (softmax of the old logits), got < 0")
    t_old = old_probs.shape[1]
    new = sorted(int(c) for c in new_classes)
    t_k = t_old + len(new)
    if not new or new != list(range(t_old, t_k)):
        raise ValueError(
            f"new_classes must be the classes T_old .. T_k - 1 = {t_old} .. {t_old + len(new) - 1}"
            f" (T_old = old_probs.shape[1] = {t_old}), got {new}"
        )
    if bool(((labels >= t_k) & (labels != IGNORE_INDEX)).any()):
        raise ValueError(f"labels contain classes >= T_k = {t_k} (other than {IGNORE_INDEX})")

    return t_old, t_k


def ucd_loss(
    features: Tensor,
    old_features: Tensor,
    labels: Tensor,
    old_probs: Tensor,
    new_classes: Iterable[int],
    *,
    temperature: float,
    uncertainty: bool = True,
    include_background: bool = False,
    old_includes_new: bool = False,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Tensor:
    """UCD loss (Eq. 11); CD (Eq. 7) with ``uncertainty=False``; Table 7 variants by keyword.

    Inputs, all at feature resolution h x w: ``features`` (B, C, h, w) of the new model (gets
    the gradient), ``old_features`` (B, C, h, w) of the frozen old model (no gradient),
    ``labels`` (B, h, w) of this step (0 background, 255 ignore, else a class; sampled at cell
    centres), ``old_probs`` (B, T_old, h, w) softmax of the old model, ``new_classes`` the
    classes Y^k of this step, numbered T_old .. T_k - 1.

    What each equation selects and weighs, and the Table 7 variants: see the module doc.
    ``chunk_size`` / ``memory_budget``: see ``contrastive_loss``.
    """
    t_old, t_k = _check_ucd_inputs(features, old_features, labels, old_probs, new_classes)
    lab = labels.reshape(-1).long()
    probs = _flat(old_probs.detach())
    esm = extended_semantic_map(lab, probs)
    keep = lab != IGNORE_INDEX
    member = keep if include_background else keep & (esm != 0)
    in_r = member
    in_s = member if old_includes_new else member & (esm < t_old)
    f = _flat(features)
    fo = _flat(old_features.detach())
    pr = ps = None
    if uncertainty:
        pr = _extended_probs(lab[in_r], probs[in_r], t_k)
        ps = _extended_probs(lab[in_s], probs[in_s], t_k)
    return contrastive_loss(
        f[in_r],
        esm[in_r],
        fo[in_s],
        esm[in_s],
        temperature=temperature,
        anchor_probs=pr,
        other_probs=ps,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
    )


def pixel_contrastive_loss(
    features: Tensor,
    labels: Tensor,
    *,
    temperature: float,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Tensor:
    """Table 6 "pixel contrastive": supervised contrast among the new model's pixel features.

    Anchors and contrast set: features (B, C, h, w) at pixels whose label (B, h, w) is neither 0
    nor 255; positives: the other pixels of the same label; negatives: pixels of another label;
    L_lc as Eq. 8 (negatives-only denominator), sigma = 1, mean over anchors having a positive
    and a negative (0 if none). No old model is involved.
    """
    _check_maps(features, labels)
    lab = labels.reshape(-1).long()
    sel = (lab != 0) & (lab != IGNORE_INDEX)
    return contrastive_loss(
        _flat(features)[sel],
        lab[sel],
        temperature=temperature,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
    )


def segment_contrastive_loss(
    features: Tensor,
    labels: Tensor,
    *,
    temperature: float,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Tensor:
    """Table 6 "segment contrastive": the pixel contrastive loss on class-mean features.

    Each (image, label) pair with label neither 0 nor 255 gives one segment, the mean of its
    pixels' features (gradient flows through the mean); segments of the same label in other
    images are positives, segments of other labels negatives; a segment whose class appears in
    no other image has no positive and is left out of the mean.
    """
    _check_maps(features, labels)
    _, c, h, w = features.shape
    lab = labels.reshape(-1).long()
    sel = ((lab != 0) & (lab != IGNORE_INDEX)).nonzero().squeeze(1)
    num = int(lab.max()) + 1 if lab.numel() else 1
    key = (sel // (h * w)) * num + lab[sel]  # one key per (image, label)
    segments, inverse = torch.unique(key, return_inverse=True)
    f = _flat(features)[sel]
    sums = f.new_zeros((segments.numel(), c)).index_add(0, inverse, f)
    counts = torch.bincount(inverse, minlength=segments.numel()).to(f.dtype)
    return contrastive_loss(
        sums / counts[:, None],
        segments % num,
        temperature=temperature,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
    )
