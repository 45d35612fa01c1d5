"""Helpers shared by the term adapters: labels at feature resolution, access to the old model."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ucd.methods.base import Batch, Term


def labels_at(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """Labels (B, H, W) downsampled to ``size`` = (h, w) by NEAREST neighbour (never bilinear).

    Nearest keeps class indices and the ignore value 255 intact (bilinear would invent classes
    at boundaries); pixel (i, j) takes the label at (floor(i * H / h), floor(j * W / w)).
    """
    if labels.dim() != 3 or labels.is_floating_point():
        raise ValueError(f"labels must be an integer tensor (B, H, W), got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    if tuple(labels.shape[1:]) == tuple(size):
        return labels
    small = F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest")
    return small[:, 0].to(labels.dtype)


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
