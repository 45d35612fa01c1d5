"""SDR's latent-space terms (Michieli & Zanuttigh, CVPR 2021) on the encoder (ResNet) output.

Labels are taken at feature resolution at cell centres (``labels_at``; SDR's code takes the
top-left pixel of each cell). The old model's argmax comes from its low-resolution logits,
already at feature resolution. ``sdr_attraction`` owns the
class prototypes (running means, carried across steps in the checkpoint): every batch first
updates them with the current features (detached) and labels, then pulls features to them.
At steps >= 1 background is skipped by the prototypes, attraction and repulsion (it may hide
old classes), as SDR does. ``sdr_pm`` (prototype matching) compares the old classes'
batch means (background pixels pseudo-labelled by the old model) with the prototypes saved by
the previous step, which stay fixed during the step.
"""

from __future__ import annotations

from typing import Any

import torch

from ucd.losses import (
    attraction_loss,
    prototype_matching_loss,
    repulsion_loss,
    sparsity_loss,
    update_prototypes,
)
from ucd.methods.base import Batch, StepContext, Term, register_term
from ucd.methods.terms.common import labels_at, old_outputs, zero_loss


def _encoder(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    feats = batch.out["stages"][-1]
    return feats, labels_at(batch.labels, tuple(feats.shape[-2:]))


class _LatentTerm(Term):
    """An SDR latent-space term; ``at_step0: false`` makes its loss 0 at step 0 (the
    prototypes are still accumulated there), as SDR's code runs step 0: attraction and
    repulsion are computed only at incremental steps, and its step-0 script sets no sparsity."""

    defaults = {"weight": 1e-3, "at_step0": True}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if not isinstance(self.params["at_step0"], bool):
            raise ValueError(f"term {self.name!r}: at_step0 must be true or false, "
                             f"got {self.params['at_step0']!r}")

    def idle(self, batch: Batch) -> bool:
        """Whether the loss is 0 on this batch (step 0 with ``at_step0: false``)."""
        return batch.ctx.step == 0 and not self.params["at_step0"]


@register_term
class SDRAttraction(_LatentTerm):
    """Contrastive attraction of each class's features to its prototype; keeps the prototypes."""

    name = "sdr_attraction"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.prototypes: torch.Tensor | None = None
        self.counts: torch.Tensor | None = None
        self.n_classes = 0

    def before_step(self, ctx: StepContext) -> None:
        self.n_classes = len(ctx.task.classes_seen(ctx.step))
        prev = ctx.prev_state.get(self.name) or {}
        self.prototypes, self.counts = prev.get("prototypes"), prev.get("counts")

    def _grow(self, channels: int, device: torch.device) -> None:
        if self.prototypes is None:
            self.prototypes = torch.zeros(0, channels)
            self.counts = torch.zeros(0, dtype=torch.long)
        self.prototypes, self.counts = self.prototypes.to(device), self.counts.to(device)
        if self.prototypes.shape[1] != channels:
            raise ValueError(f"term 'sdr_attraction': saved prototypes have "
                             f"{self.prototypes.shape[1]} channels, features have {channels}")
        extra = self.n_classes - self.prototypes.shape[0]
        if extra > 0:
            pad = self.prototypes.new_zeros(extra, channels)
            self.prototypes = torch.cat([self.prototypes, pad])
            self.counts = torch.cat([self.counts, self.counts.new_zeros(extra)])

    def loss(self, batch: Batch) -> torch.Tensor:
        feats, labels = _encoder(batch)
        if self.n_classes == 0:  # resumed without before_step
            self.n_classes = len(batch.ctx.task.classes_seen(batch.ctx.step))
        self._grow(feats.shape[1], feats.device)
        skip = batch.ctx.step > 0
        self.prototypes, self.counts = update_prototypes(
            feats, labels, self.prototypes, self.counts, skip_background=skip
        )
        if self.idle(batch):
            return zero_loss(batch)
        return attraction_loss(feats, labels, self.prototypes, skip_background=skip)

    def state_dict(self, full: bool = False) -> dict[str, Any]:
        if self.prototypes is None:
            return {}
        return {"prototypes": self.prototypes.cpu(), "counts": self.counts.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prototypes, self.counts = state.get("prototypes"), state.get("counts")


@register_term
class SDRRepulsion(_LatentTerm):
    """Contrastive repulsion: 1 / distance between the batch means of different classes."""

    name = "sdr_repulsion"
    batch_coupled = True  # class means over the whole batch

    def loss(self, batch: Batch) -> torch.Tensor:
        if self.idle(batch):
            return zero_loss(batch)
        feats, labels = _encoder(batch)
        return repulsion_loss(feats, labels, skip_background=batch.ctx.step > 0)


@register_term
class SDRSparsity(_LatentTerm):
    """Feature sparsity L_fs on the class-max-normalised encoder features."""

    name = "sdr_sparsity"

    def loss(self, batch: Batch) -> torch.Tensor:
        if self.idle(batch):
            return zero_loss(batch)
        return sparsity_loss(*_encoder(batch))


@register_term
class SDRPrototypeMatching(Term):
    """L_pm: old classes' batch means (on background pixels, old model's argmax) vs the
    prototypes of the previous step (saved by ``sdr_attraction``)."""

    name = "sdr_pm"
    needs_old_model = True
    defaults = {"weight": 1e-2}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.prototypes: torch.Tensor | None = None

    def before_step(self, ctx: StepContext) -> None:
        prev = ctx.prev_state.get("sdr_attraction") or {}
        if "prototypes" not in prev:
            raise ValueError(
                f"term 'sdr_pm' at step {ctx.step} needs the prototypes saved by step "
                f"{ctx.step - 1} (term 'sdr_attraction' in the checkpoint's method_state); "
                "train the previous step with a method that has 'sdr_attraction' (step0: own)"
            )
        self.prototypes = prev["prototypes"].to(ctx.device)

    def loss(self, batch: Batch) -> torch.Tensor:
        if self.prototypes is None:  # resumed: before_step was not run
            self.before_step(batch.ctx)
        feats, labels = _encoder(batch)
        old = old_outputs(batch, self)
        old_pred = labels_at(old["logits_low"].argmax(1), tuple(feats.shape[-2:]))
        return prototype_matching_loss(feats, labels, old_pred, self.prototypes)
