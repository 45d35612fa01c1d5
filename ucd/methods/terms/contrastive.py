"""Contrastive terms on the decoder (ASPP) features: UCD / CD and its Table 7 variants, and the
Table 6 pixel / segment contrastive baselines.

Labels are taken at feature resolution at each cell's centre (``labels_at``); the old model's
probabilities are the softmax of its low-resolution logits (same resolution as the features).
"""

from __future__ import annotations

from typing import Any

import torch

from ucd.losses import pixel_contrastive_loss, segment_contrastive_loss, ucd_loss
from ucd.methods.base import Batch, Term, register_term
from ucd.methods.terms.common import check_positive, labels_at, old_outputs

# The contrastive temperature tau of UCD and of the Table 6 baselines (paper 4.2; Table 8
# varies it): the one source of this default, read by every term below.
TEMPERATURE = 0.07


class _Contrastive(Term):
    batch_coupled = True  # the contrast set spans every image of the batch

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_positive(self.name, "temperature", self.params["temperature"])
        chunk = self.params.get("chunk_size")
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int)
                                  or chunk < 1):
            raise ValueError(f"term {self.name!r}: chunk_size must be null or an integer >= 1, "
                             f"got {chunk!r}")

    def cost_kind(self) -> str | None:
        """The term's name: a contrastive set costs more than a plain step."""
        return self.name

    @staticmethod
    def _maps(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        feats = batch.out["features"]
        return feats, labels_at(batch.labels, tuple(feats.shape[-2:]))


@register_term
class UCD(_Contrastive):
    """Uncertainty-aware contrastive distillation (Eq. 11); ``uncertainty: false`` gives CD
    (Eq. 7); ``include_background`` / ``old_includes_new`` give the Table 7 variants."""

    name = "ucd"
    needs_old_model = True
    defaults = {"weight": 0.01, "temperature": TEMPERATURE, "uncertainty": True,
                "include_background": False, "old_includes_new": False, "chunk_size": None}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        for key in ("uncertainty", "include_background", "old_includes_new"):
            if not isinstance(self.params[key], bool):
                raise ValueError(f"term 'ucd': {key} must be true or false, "
                                 f"got {self.params[key]!r}")

    def cost_kind(self) -> str | None:
        """ucd, with +bg / +oldnew for the Table 7 variants (larger contrast sets)."""
        flags = [f for k, f in (("include_background", "bg"), ("old_includes_new", "oldnew"))
                 if self.params[k]]
        return "+".join(["ucd", *flags])

    def loss(self, batch: Batch) -> torch.Tensor:
        old = old_outputs(batch, self)
        feats, labels = self._maps(batch)
        return ucd_loss(
            feats, old["features"], labels, torch.softmax(old["logits_low"].float(), dim=1),
            batch.ctx.new_classes,
            temperature=float(self.params["temperature"]),
            uncertainty=self.params["uncertainty"],
            include_background=self.params["include_background"],
            old_includes_new=self.params["old_includes_new"],
            chunk_size=self.params["chunk_size"],
        )


@register_term
class PixelContrastive(_Contrastive):
    """Table 6 "pixel contrastive": supervised contrast among the new model's labelled pixels."""

    name = "pixcon"
    defaults = {"weight": 0.01, "temperature": TEMPERATURE, "chunk_size": None}

    def loss(self, batch: Batch) -> torch.Tensor:
        return pixel_contrastive_loss(*self._maps(batch),
                                      temperature=float(self.params["temperature"]),
                                      chunk_size=self.params["chunk_size"])


@register_term
class SegmentContrastive(_Contrastive):
    """Table 6 "segment contrastive": contrast of per-image class-mean features."""

    name = "segcon"
    defaults = {"weight": 0.01, "temperature": TEMPERATURE, "chunk_size": None}

    def loss(self, batch: Batch) -> torch.Tensor:
        return segment_contrastive_loss(*self._maps(batch),
                                        temperature=float(self.params["temperature"]),
                                        chunk_size=self.params["chunk_size"])
