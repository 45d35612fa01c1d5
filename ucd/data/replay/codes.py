"""How a replayed image's pixels are labelled in a batch: ``replay_code(c) = -(c + 1)`` on every
pixel of an image drawn for old class c, decoded by ``replay_class``. A fact of the data that
the replay sets write and RECALL's loss reads (ucd.losses.recall), so it lives with the data.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["replay_class", "replay_code"]


def replay_code(class_index: int) -> int:
    """The (negative) label value marking a pixel of a replayed image drawn for a class."""
    if class_index < 1:
        raise ValueError(f"replayed images are drawn for a class >= 1, got {class_index}")
    return -(class_index + 1)


def replay_class(labels: Tensor) -> Tensor:
    """The class each pixel's replayed image was drawn for (0 where the pixel is not replayed)."""
    return torch.where(labels < 0, -labels - 1, torch.zeros_like(labels))
