"""Loss-term adapters: each wraps one pure loss of ``ucd.losses`` for the engine."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ucd.methods.base import Batch, Term, register_term


@register_term
class CrossEntropy(Term):
    """Plain cross-entropy on the step's labels (255 ignored): FT, Joint, and every step 0."""

    name = "ce"

    def loss(self, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(batch.out["logits"], batch.labels, ignore_index=255)
