"""Helpers shared by the term adapters: labels at feature resolution (cell centres), access to
the old model, parameter checks."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ucd.methods.base import Batch, Term


def cell_centres(n_in: int, n_out: int, device: torch.device | None = None) -> Tensor:
    """Index of the input pixel holding the centre of each of ``n_out`` equal cells that tile
    ``n_in`` pixels: floor((i + 1/2) * n_in / n_out), in exact integer arithmetic.

    The model upsamples its low-resolution logits with ``align_corners=False``, which places
    feature cell i at (i + 1/2) * n_in / n_out (pixel p covering [p, p + 1)); this picks the
    pixel under that point (for an even cell width the point lies on a pixel border and the
    pixel after it is taken), as PyTorch's "nearest-exact" interpolation does.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be >= 1, got {n_in} pixels into {n_out} cells")
    i = torch.arange(n_out, device=device)
    return ((2 * i + 1) * n_in) // (2 * n_out)


def labels_at(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """Labels (B, H, W) at feature resolution ``size`` = (h, w): the label at each cell's centre.

    Sampling (never interpolating) keeps class indices and the ignore value 255 intact; taking
    the cell centre (``cell_centres``) aligns the labels with the features and logits, which
    nearest downsampling (top-left pixel of each cell) leaves half a cell off (7.5 px at
    output stride 16). Sizes need not divide evenly.
    """
    if labels.dim() != 3 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor (B, H, W), got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    (h_in, w_in), (h, w) = labels.shape[1:], size
    if (h_in, w_in) == (h, w):
        return labels
    rows = cell_centres(h_in, h, labels.device)
    cols = cell_centres(w_in, w, labels.device)
    return labels.index_select(1, rows).index_select(2, cols)


def old_outputs(batch: Batch, term: Term) -> dict[str, Any]:
    """The frozen old model's outputs, or a clear error when the engine did not provide them."""
    if batch.old_out is None:
        raise ValueError(
            f"term {term.name!r} needs the old model's outputs, but the batch has none "
            f"(step {batch.ctx.step}): is the term listed with needs_old_model=True?"
        )
    return batch.old_out


def zero_loss(batch: Batch) -> Tensor:
    """A zero loss on the batch's device (for terms inactive at this step)."""
    return torch.zeros((), device=batch.out["logits"].device)


def check_choice(term: str, key: str, value: Any, choices: tuple) -> None:
    """Refuse a parameter value outside ``choices`` with a message naming term and key."""
    if value not in choices:
        raise ValueError(f"term {term!r}: {key} must be one of {list(choices)}, got {value!r}")


def check_positive(term: str, key: str, value: Any, *, allow_zero: bool = False) -> None:
    """Refuse a non-numeric or non-positive parameter with a message naming term and key."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"term {term!r}: {key} must be a number {bound}, got {value!r}")


def to_device(obj: Any, device: torch.device) -> Any:
    """Move every tensor inside nested dicts/lists (and plain objects' __dict__) to ``device``."""
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(v, device) for v in obj)
    if hasattr(obj, "__dict__") and obj.__class__.__module__.startswith("ucd."):
        for k, v in vars(obj).items():
            setattr(obj, k, to_device(v, device))
    return obj
