"""PLOP's entropy-based pseudo-labelling of background pixels and its re-weighted CE (Eq. 19).

Before step k, one pass over the step's training data with the old model fills, for every old
class c, a 100-bin histogram over [0, 1] of the normalised entropy H(p) / log(n_old) of the
background pixels (ground truth 0) that the old model predicts as c. The threshold of class c
is the median of that distribution, read off the histogram with linear interpolation inside
the median bin, and floored at ``min_threshold`` (PLOP: thresholds[c] = max(median, 0.001)).

During training, a background pixel takes the old model's argmax c when its normalised entropy
is below the threshold of c (c may be 0: a confident background stays 0); otherwise it is
ignored (255). Other pixels keep their label. nu, per image, is the number of accepted
background pixels over the number of background pixels (1 when there are none), and the loss
is nu times the cross-entropy, averaged over every pixel of the batch (|I| of Eq. 19; ignored
pixels count in the denominator with a zero loss, as in PLOP's implementation).

Two ways to read the thresholds off the histogram (``method``):

- ``"median"`` (ours, the default): the histogram is over the normalised entropy in [0, 1] and
  the median is read correctly (first bin where the cumulative count reaches half, linear
  interpolation inside it).
- ``"official"``: what PLOP's own code (``find_median`` in its train.py) computes. Its entropy
  is the channel *mean* of -p log p divided by log(n_old) and again by log(T_k): our
  normalised entropy times ``scale`` = 1 / (n_old log T_k), so every value falls in the
  lowest 1 / (n_old log T_k) of the range (2 or 3 of 100 bins on VOC). Its search walks the
  bins adding each bin's *index* (not its count) to the running sum and stops at the first bin
  i with running <= half <= running + count[i]: the median is exact if bin 0 holds half the
  pixels; if bin 1 (or 2) alone holds about half, it is read as if the bins before it were
  empty (too high, possibly past the bin); otherwise the walk runs off the end and divides by
  the empty last bin: +inf (every pixel of the class accepted) when half > 4950 pixels, -inf
  (the floor: almost none accepted) below, NaN (none accepted) when half equals the running
  sum at an empty bin. The bin index is computed as int((i / bins) * bins) (29 -> 28,
  57 -> 56, 58 -> 57 at 100 bins), reproduced too. The floor ``min_threshold`` applies on
  PLOP's scale there (PLOP: max(median, 0.001); NaN stays NaN). See docs/deviations.md.

Comparisons entropy < threshold are unchanged by a rescaling, so thresholds are always returned
on the normalised [0, 1] scale (the official ones divided by ``scale``); on that scale PLOP's
floor 0.001 is 0.001 * n_old * log(T_k).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from ucd.losses._checks import IGNORE_INDEX, check_labels, check_logits

__all__ = [
    "THRESHOLD_METHODS",
    "EntropyHistogram",
    "entropy_thresholds",
    "official_median",
    "normalized_entropy",
    "plop_pseudo_labels",
    "pseudo_ce",
]


THRESHOLD_METHODS = ("median", "official")


def normalized_entropy(probs: Tensor, eps: float = 1e-8) -> Tensor:
    """Entropy of ``probs`` (B, C, H, W) along C divided by log(C): (B, H, W) values in [0, 1]."""
    c = probs.shape[1]
    if c < 2:
        raise ValueError(f"normalised entropy needs at least 2 classes, got {c}")
    entropy = -(probs * torch.log(probs + eps)).sum(dim=1)
    return entropy.clamp(min=0.0) / math.log(c)


class EntropyHistogram:
    """Per-class histogram of the old model's normalised entropy on background pixels, binned
    over [0, 1] after multiplication by ``scale`` (1: ours; 1 / (n_old log T_k): PLOP's units)."""

    def __init__(
        self, n_old: int, bins: int = 100, ignore_index: int = IGNORE_INDEX, scale: float = 1.0
    ) -> None:
        if isinstance(n_old, bool) or not isinstance(n_old, int) or n_old < 2:
            raise ValueError(f"n_old must be an int >= 2 (background + an old class), got {n_old}")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be an int >= 1, got {bins}")
        if not isinstance(scale, int | float) or isinstance(scale, bool) or not scale > 0:
            raise ValueError(f"scale must be a number > 0, got {scale!r}")
        self.n_old, self.bins, self.ignore_index = n_old, bins, ignore_index
        self.scale = float(scale)
        self.counts: Tensor | None = None  # (n_old, bins) int64, on the logits' device

    @torch.no_grad()
    def update(self, old_logits: Tensor, labels: Tensor) -> None:
        """Add the background pixels (label 0) of a batch: old logits (B, n_old, H, W)."""
        old_logits = check_logits("old_logits", old_logits)
        if old_logits.shape[1] != self.n_old:
            raise ValueError(
                f"old_logits has {old_logits.shape[1]} channels, expected n_old={self.n_old}"
            )
        b, _, h, w = old_logits.shape
        labels = check_labels(labels, (b, h, w), ignore_index=self.ignore_index)
        probs = torch.softmax(old_logits.float(), dim=1)
        bg = labels == 0
        cls = probs.argmax(dim=1)[bg]
        value = normalized_entropy(probs)[bg] * self.scale
        idx = (value * self.bins).long().clamp(0, self.bins - 1)
        flat = torch.bincount(cls * self.bins + idx, minlength=self.n_old * self.bins)
        if self.counts is None:
            self.counts = torch.zeros(self.n_old * self.bins, dtype=torch.long, device=flat.device)
        self.counts += flat.to(self.counts.device)

    def medians(self) -> Tensor:
        """Histogram median per class (n_old,); 0 for a class with no pixel."""
        if self.counts is None:
            return torch.zeros(self.n_old)
        hist = self.counts.view(self.n_old, self.bins).double()
        total = hist.sum(dim=1)
        half = total / 2
        cum = hist.cumsum(dim=1)
        # first bin whose cumulative count reaches half the total
        k = (cum < half.unsqueeze(1)).sum(dim=1).clamp(max=self.bins - 1)
        in_bin = hist.gather(1, k.unsqueeze(1)).squeeze(1)
        before = cum.gather(1, k.unsqueeze(1)).squeeze(1) - in_bin
        frac = torch.where(
            in_bin > 0, (half - before) / in_bin.clamp(min=1), torch.zeros_like(half)
        )
        median = (k.double() + frac) / self.bins
        return torch.where(total > 0, median, torch.zeros_like(median)).float()

    def official_medians(self) -> Tensor:
        """PLOP's own histogram 'median' per class (n_old,), see the module doc; 0 for a class
        with no pixel."""
        if self.counts is None:
            return torch.zeros(self.n_old)
        rows = self.counts.view(self.n_old, self.bins).tolist()
        return torch.tensor([official_median(r) for r in rows], dtype=torch.float32)

    def thresholds(self, *, min_threshold: float = 0.001, method: str = "median") -> Tensor:
        """Per-class thresholds on the normalised [0, 1] scale, shape (n_old,):
        max(statistic / scale, min_threshold), the statistic read by ``method``."""
        if method not in THRESHOLD_METHODS:
            raise ValueError(f"method must be one of {list(THRESHOLD_METHODS)}, got {method!r}")
        stat = self.medians() if method == "median" else self.official_medians()
        return (stat / self.scale).clamp(min=min_threshold)


def official_median(counts: list[int]) -> float:
    """The value PLOP's ``find_median`` reads off one class's histogram ``counts`` (in [0, 1]
    bin units, or +-inf / NaN when its walk runs off the end: see the module doc)."""
    bins, total = len(counts), sum(counts)
    if total == 0:
        return 0.0  # PLOP leaves the class's threshold at 0 (then floored)
    half, running = total / 2, 0.0
    for i in range(bins):
        lower = i / bins
        index = int(lower * bins)  # PLOP's float round trip, not always i
        if running <= half <= running + counts[index]:
            break
        running += lower * bins  # the bin's index, where a count was meant
    gap, in_bin = half - running, counts[index]
    if in_bin == 0:  # torch divides by zero without error
        frac = math.nan if gap == 0 else math.copysign(math.inf, gap)
    else:
        frac = gap / in_bin
    return lower + frac * (1 / bins)


def entropy_thresholds(
    batches: Iterable[tuple[Tensor, Tensor]],
    n_old: int,
    *,
    bins: int = 100,
    min_threshold: float = 0.001,
    ignore_index: int = IGNORE_INDEX,
    method: str = "median",
    n_classes: int | None = None,
) -> Tensor:
    """Thresholds (n_old,) from an iterable of (old_logits (B, n_old, H, W), labels (B, H, W)).

    ``method`` "median" (ours) or "official" (PLOP's code; binned on PLOP's entropy scale,
    which needs ``n_classes`` = T_k, the classes seen at this step).
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"method must be one of {list(THRESHOLD_METHODS)}, got {method!r}")
    scale = 1.0
    if method == "official":
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes <= n_old:
            raise ValueError(f"method 'official' needs n_classes = T_k > n_old={n_old}, "
                             f"got {n_classes!r}")
        scale = 1.0 / (n_old * math.log(n_classes))
    hist = EntropyHistogram(n_old, bins, ignore_index, scale=scale)
    for old_logits, labels in batches:
        hist.update(old_logits, labels)
    return hist.thresholds(min_threshold=min_threshold, method=method)


@torch.no_grad()
def plop_pseudo_labels(
    labels: Tensor,
    old_logits: Tensor,
    thresholds: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[Tensor, Tensor]:
    """Pseudo-labels (B, H, W) and nu (B,) from the old model's logits (B, n_old, H, W)."""
    old_logits = check_logits("old_logits", old_logits)
    b, n_old, h, w = old_logits.shape
    labels = check_labels(labels, (b, h, w), ignore_index=ignore_index)
    if not isinstance(thresholds, Tensor) or thresholds.shape != (n_old,):
        shape = tuple(thresholds.shape) if isinstance(thresholds, Tensor) else type(thresholds)
        raise ValueError(f"thresholds must be a tensor of shape ({n_old},), got {shape}")
    probs = torch.softmax(old_logits.float(), dim=1)
    pred = probs.argmax(dim=1)
    confident = normalized_entropy(probs) < thresholds.to(probs.device, probs.dtype)[pred]
    background = labels == 0
    accepted = background & confident
    pseudo = torch.where(accepted, pred, labels)
    pseudo = pseudo.masked_fill(background & ~confident, ignore_index)
    n_bg = background.sum(dim=(1, 2)).float()
    nu = torch.where(n_bg > 0, accepted.sum(dim=(1, 2)).float() / n_bg.clamp(min=1),
                     torch.ones_like(n_bg))
    return pseudo, nu


def pseudo_ce(
    logits: Tensor, pseudo_labels: Tensor, nu: Tensor | float, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Eq. 19: mean over all B*H*W pixels of nu[b] * CE (ignored pixels contribute 0)."""
    logits = check_logits("logits", logits)
    b, t, h, w = logits.shape
    pseudo_labels = check_labels(
        pseudo_labels, (b, h, w), n_classes=t, ignore_index=ignore_index, name="pseudo_labels"
    )
    nu = torch.as_tensor(nu, dtype=logits.dtype, device=logits.device)
    if nu.dim() == 0:
        nu = nu.expand(b)
    if nu.shape != (b,):
        raise ValueError(f"nu must be a scalar or of shape ({b},), got {tuple(nu.shape)}")
    ce = F.cross_entropy(logits, pseudo_labels, ignore_index=ignore_index, reduction="none")
    return (nu.view(b, 1, 1) * ce).mean()
