"""Input checks shared by the baseline losses: clear errors that name the offending argument."""

from __future__ import annotations

import torch
from torch import Tensor

IGNORE_INDEX = 255


def check_float(name: str, x: object, ndim: int | None = None) -> Tensor:
    """``x`` must be a floating-point tensor (of ``ndim`` dimensions when given)."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        kind = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point tensor, got {kind}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    return x


def upcast(x: Tensor) -> Tensor:
    """Half-precision inputs (e.g. under autocast) are computed in float32; others unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def check_logits(name: str, x: object) -> Tensor:
    """Dense scores (B, C, H, W) with at least one channel."""
    x = check_float(name, x, ndim=4)
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have at least one channel, got shape {tuple(x.shape)}")
    return upcast(x)


def check_old_new(new_logits: object, old_logits: object) -> tuple[Tensor, Tensor]:
    """New (B, T, H, W) and old (B, T_old, H, W) logits with T >= T_old and equal B, H, W."""
    new = check_logits("new_logits", new_logits)
    old = check_logits("old_logits", old_logits)
    if new.shape[0] != old.shape[0] or new.shape[2:] != old.shape[2:]:
        raise ValueError(
            f"new_logits {tuple(new.shape)} and old_logits {tuple(old.shape)} must share "
            "batch size and spatial size (B, *, H, W)"
        )
    if new.shape[1] < old.shape[1]:
        raise ValueError(
            f"new_logits has {new.shape[1]} channels, fewer than old_logits ({old.shape[1]}): "
            "the new model must extend the old one"
        )
    return new, old


def check_labels(
    labels: object,
    shape: tuple[int, ...],
    *,
    n_classes: int | None = None,
    ignore_index: int = IGNORE_INDEX,
    name: str = "labels",
) -> Tensor:
    """Integer class map of ``shape``: values in [0, n_classes) or ``ignore_index``."""
    if (
        not isinstance(labels, Tensor)
        or labels.is_floating_point()
        or labels.dtype == torch.bool
        or labels.is_complex()
    ):
        kind = labels.dtype if isinstance(labels, Tensor) else type(labels).__name__
        raise TypeError(f"{name} must be an integer tensor, got {kind}")
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(labels.shape)}")
    valid = labels != ignore_index
    if bool((labels[valid] < 0).any()):
        raise ValueError(f"{name} has negative values other than the ignore index {ignore_index}")
    if n_classes is not None and bool((labels[valid] >= n_classes).any()):
        bad = int(labels[valid].max())
        raise ValueError(
            f"{name} has class {bad} but only {n_classes} classes exist "
            f"(valid: 0..{n_classes - 1} or {ignore_index})"
        )
    return labels


def check_n_old(n_old: object, n_total: int, *, minimum: int = 1) -> int:
    """``n_old`` (T_{k-1}) must be an int in [minimum, n_total]."""
    if isinstance(n_old, bool) or not isinstance(n_old, int):
        raise TypeError(f"n_old must be an int, got {type(n_old).__name__}")
    if not minimum <= n_old <= n_total:
        raise ValueError(f"n_old must be in [{minimum}, {n_total}] (channels), got {n_old}")
    return n_old
