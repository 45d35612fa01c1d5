"""Distillation terms on outputs and features: LwF KD, MiB's unbiased KD, LwF-MC, ILT (and the
masked variant used for ILT-dagger), PLOP's Local POD."""

from __future__ import annotations

import math
from typing import Any

import torch

from ucd.losses import (
    feature_mse,
    fold_new_logits,
    kd_loss,
    local_pod,
    lwf_mc_loss,
    masked_feature_distill,
    unbiased_kd,
)
from ucd.methods.base import Batch, Term, register_term
from ucd.methods.terms.common import check_choice, check_positive, labels_at, old_outputs


@register_term
class KD(Term):
    """LwF's KD on the old classes' (renormalised) probabilities, on full-size logits."""

    name = "kd"
    needs_old_model = True
    defaults = {"weight": 100.0, "temperature": 1.0, "class_mean": True}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_positive(self.name, "temperature", self.params["temperature"])

    def loss(self, batch: Batch) -> torch.Tensor:
        old = old_outputs(batch, self)
        return kd_loss(batch.out["logits"], old["logits"],
                       temperature=float(self.params["temperature"]),
                       class_mean=bool(self.params["class_mean"]))


@register_term
class UnbiasedKD(Term):
    """MiB's unbiased KD (Eq. 15-16): new classes count as background for the old model."""

    name = "mib_kd"
    needs_old_model = True
    defaults = {"weight": 10.0, "alpha": 1.0, "class_mean": True}

    def loss(self, batch: Batch) -> torch.Tensor:
        old = old_outputs(batch, self)
        return unbiased_kd(batch.out["logits"], old["logits"], alpha=float(self.params["alpha"]),
                           class_mean=bool(self.params["class_mean"]))


@register_term
class LwFMC(Term):
    """LwF-MC's distillation: BCE of the new old-class sigmoids against the old model's."""

    name = "lwf_mc"
    needs_old_model = True
    defaults = {"weight": 10.0}

    def loss(self, batch: Batch) -> torch.Tensor:
        return lwf_mc_loss(batch.out["logits"], old_outputs(batch, self)["logits"])


@register_term
class ILTFeatures(Term):
    """ILT's encoder distillation: MSE between the new and old ResNet outputs (last stage)."""

    name = "ilt_feat"
    needs_old_model = True
    defaults = {"weight": 100.0}

    def loss(self, batch: Batch) -> torch.Tensor:
        return feature_mse(batch.out["stages"][-1], old_outputs(batch, self)["stages"][-1])


@register_term
class MaskedFeatures(Term):
    """ILT-dagger's encoder distillation (our reading, see ``ucd.losses.feature_distill``): only
    pixels labelled background or old (label < T_{k-1} at feature resolution, taken at cell
    centres by ``labels_at``) are distilled; ``distance`` "mse" (default) or "cosine"."""

    name = "ilt_masked"
    needs_old_model = True
    defaults = {"weight": 100.0, "distance": "mse"}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_choice(self.name, "distance", self.params["distance"], ("mse", "cosine"))

    def loss(self, batch: Batch) -> torch.Tensor:
        new, old = batch.out["stages"][-1], old_outputs(batch, self)["stages"][-1]
        labels = labels_at(batch.labels, tuple(new.shape[-2:]))
        return masked_feature_distill(new, old, labels, batch.ctx.n_old,
                                      distance=self.params["distance"])


@register_term
class LocalPOD(Term):
    """PLOP's Local POD (Eq. 18) on the 4 backbone stages, the ASPP output and the logits.

    ``weight`` (lambda_pod, 0.01) is the factor of the 5 feature layers; ``logits_weight`` is the
    absolute factor of the logits layer (PLOP's 0.0005), whose new-class channels are first
    summed into background. The sum over the 6 layers is divided by 6 and multiplied by
    sqrt(T_k / |Y^k|) (PLOP's schedule), as in PLOP's implementation.
    """

    name = "pod"
    needs_old_model = True
    defaults = {"weight": 0.01, "logits_weight": 0.0005, "scales": [1, 2, 4]}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_positive(self.name, "logits_weight", self.params["logits_weight"], allow_zero=True)

    def loss(self, batch: Batch) -> torch.Tensor:
        old = old_outputs(batch, self)
        n_old = batch.ctx.n_old
        new_layers = [*batch.out["stages"], batch.out["features"],
                      fold_new_logits(batch.out["logits_low"], n_old)]
        old_layers = [*old["stages"], old["features"], old["logits_low"]]
        ratio = float(self.params["logits_weight"]) / self.weight if self.weight else 0.0
        weights = [1.0] * (len(new_layers) - 1) + [ratio]
        n_new = len(batch.ctx.new_classes)
        schedule = math.sqrt((n_old + n_new) / n_new)
        pod = local_pod(new_layers, old_layers, scales=tuple(self.params["scales"]),
                        weights=weights)
        return schedule * pod
