"""Classification terms: plain / multi-label / unbiased CE, CE on the extended semantic map, and
PLOP's pseudo-labelled CE with its threshold hook."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ucd.facts.spec import StepSpec
from ucd.losses import (
    entropy_thresholds,
    multilabel_bce,
    plop_pseudo_labels,
    pseudo_ce,
    unbiased_cross_entropy,
)
from ucd.losses.plop_pseudo import THRESHOLD_METHODS
from ucd.losses.ucd import extended_semantic_map
from ucd.methods.base import Batch, StepContext, Term, register_term
from ucd.methods.terms.common import check_choice, check_positive, old_outputs


@register_term
class CrossEntropy(Term):
    """Plain cross-entropy on the step's labels (255 ignored): FT, Joint, and every step 0."""

    name = "ce"

    def loss(self, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(batch.out["logits"], batch.labels, ignore_index=255)


@register_term
class MultiLabelBCE(Term):
    """LwF-MC's classification term: per-class binary cross-entropy on sigmoid outputs."""

    name = "bce"

    def loss(self, batch: Batch) -> torch.Tensor:
        return multilabel_bce(batch.out["logits"], batch.labels)


@register_term
class UnbiasedCE(Term):
    """MiB's unbiased cross-entropy (Eq. 13-14); plain CE at step 0 (no old classes yet)."""

    name = "mib_ce"

    def loss(self, batch: Batch) -> torch.Tensor:
        n_old = batch.ctx.n_old
        if n_old == 0:  # a method training its own step 0 (e.g. MiB+SDR)
            return F.cross_entropy(batch.out["logits"], batch.labels, ignore_index=255)
        return unbiased_cross_entropy(batch.out["logits"], batch.labels, n_old)


@register_term
class ExtendedMapCE(Term):
    """Cross-entropy on the extended semantic map (Eq. 1-2): background pixels take the old
    model's argmax, labelled pixels keep their label, 255 stays ignored (standalone UCD)."""

    name = "esm_ce"
    needs_old_model = True

    def loss(self, batch: Batch) -> torch.Tensor:
        old = old_outputs(batch, self)
        esm = extended_semantic_map(batch.labels, old["logits"])  # argmax of logits = of softmax
        return F.cross_entropy(batch.out["logits"], esm, ignore_index=255)


@register_term
class PlopPseudoCE(Term):
    """PLOP's pseudo-labelled CE re-weighted by nu (Eq. 19).

    ``before_step`` passes once over the step's training data with the old model and sets the
    per-class entropy thresholds from 100-bin histograms: ``thresholds: median`` (ours, the
    histogram median) or ``official`` (what PLOP's own histogram code computes; see
    ``ucd.losses.plop_pseudo`` and docs/deviations.md). ``threshold_floor`` is PLOP's 0.001 in
    PLOP's own entropy units; on the [0, 1] scale of ``ucd.losses.plop_pseudo`` it is
    ``threshold_floor * n_old * log(T_k)``.
    """

    name = "plop_pseudo"
    needs_old_model = True
    defaults = {"weight": 1.0, "bins": 100, "threshold_floor": 0.001, "thresholds": "median"}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_positive(self.name, "threshold_floor", self.params["threshold_floor"],
                       allow_zero=True)
        check_choice(self.name, "thresholds", self.params["thresholds"], THRESHOLD_METHODS)
        bins = self.params["bins"]
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"term 'plop_pseudo': bins must be an integer >= 1, got {bins!r}")
        self.thresholds: torch.Tensor | None = None

    def floor(self, ctx: StepContext) -> float:
        """The thresholds' lower bound on the normalised-entropy scale."""
        t_k = ctx.n_old + len(ctx.new_classes)
        return float(self.params["threshold_floor"]) * ctx.n_old * math.log(t_k)

    @torch.no_grad()
    def before_step(self, ctx: StepContext) -> None:
        if ctx.old_model is None or ctx.loader is None:
            raise ValueError("term 'plop_pseudo' needs the old model and the step's data loader "
                             f"in before_step (step {ctx.step})")
        ctx.old_model.eval()

        def batches():
            for images, labels in ctx.loader:
                images, labels = images.to(ctx.device), labels.to(ctx.device)
                yield ctx.old_model(images)["logits"], labels

        self.thresholds = entropy_thresholds(
            batches(), ctx.n_old, bins=self.params["bins"], min_threshold=self.floor(ctx),
            method=self.params["thresholds"], n_classes=ctx.n_old + len(ctx.new_classes),
        )

    def loss(self, batch: Batch) -> torch.Tensor:
        if self.thresholds is None:
            raise ValueError("term 'plop_pseudo': thresholds not computed (before_step not run)")
        old = old_outputs(batch, self)
        pseudo, nu = plop_pseudo_labels(batch.labels, old["logits"], self.thresholds)
        return pseudo_ce(batch.out["logits"], pseudo, nu)

    def state_dict(self, full: bool = False) -> dict[str, Any]:
        return {} if self.thresholds is None else {"thresholds": self.thresholds.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "thresholds" in state:
            self.thresholds = state["thresholds"]


@register_term
class BackgroundHeadInit(Term):
    """MiB's initialisation of a new step's head (no loss of its own): the new classes' rows
    start as the background row, and the background and new biases share its probability
    (b0' = b0 - log(|new| + 1)). Named by a method's ``init`` in methods.yaml (MiB, PLOP and
    the methods built on them)."""

    name = "mib_init"
    defaults: ClassVar[dict[str, Any]] = {"weight": 0.0}

    def loss(self, batch: Batch) -> torch.Tensor:
        raise TypeError("mib_init initialises a new head (methods.yaml `init`); it has no loss "
                        "and cannot be listed under `terms`")

    def adapt_model(self, model: torch.nn.Module, spec: StepSpec) -> None:
        model.classifier.init_new_head_from_background()
