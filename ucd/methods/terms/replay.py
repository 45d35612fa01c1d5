"""RECALL (Maracani, Michieli, Toldo, Zanuttigh, ICCV 2021): replay of the old classes.

At step k >= 1 the term extends the step's training data with the step's replay set
(``run.data.replay``, built once per step by the workflow from a source: ``ucd.data.replay``),
mixed into every batch at ``replay_ratio`` replayed images per new image (RECALL's code: 4:4),
``images_per_class`` per old class (RECALL: 500). Its loss is cross-entropy on targets made by
the frozen step-(k-1) model (``ucd.losses.recall.recall_targets``): replayed pixels are labelled
as background or the class their image was drawn for (``replay_labels: class``; ``old``: the
old model's argmax over every old class), and the step's own background pixels take the old
model's argmax (label inpainting; 255 too with ``inpaint_ignore``, as RECALL's code does).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ucd.facts.config import ConfigError
from ucd.losses.recall import REPLAY_LABEL_RULES, recall_targets
from ucd.methods.base import Batch, StepContext, Term, register_term
from ucd.methods.terms.common import check_choice, check_positive, old_outputs


@register_term
class RecallCE(Term):
    """Cross-entropy on the step's images and replayed images, labelled by the old model."""

    name = "recall_ce"
    needs_old_model = True
    replays = True
    defaults = {"weight": 1.0, "images_per_class": 500, "replay_ratio": 1.0,
                "replay_labels": "class", "inpaint_background": True, "inpaint_ignore": True}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        n = self.params["images_per_class"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"term 'recall_ce': images_per_class must be an integer >= 1, "
                             f"got {n!r}")
        check_positive(self.name, "replay_ratio", self.params["replay_ratio"], allow_zero=True)
        check_choice(self.name, "replay_labels", self.params["replay_labels"],
                     REPLAY_LABEL_RULES)
        for key in ("inpaint_background", "inpaint_ignore"):
            if not isinstance(self.params[key], bool):
                raise ValueError(f"term 'recall_ce': {key} must be true or false, "
                                 f"got {self.params[key]!r}")
        self.source: str | None = None

    def training_data(self, ctx: StepContext, dataset: Any) -> Any:
        """The step's images followed by the replay set's, mixed into every batch."""
        from ucd.data.replay import ReplayDataset, ReplayMix

        run = ctx.run
        if run.data.replay is None:
            raise ConfigError(
                f"{run.method} replays at step {ctx.step}, but data.replay is not set: run it "
                "through the workflow (replay_set rule) or point data.replay at a set built by "
                "`ucd data replay`"
            )
        replay = ReplayDataset(run.data.replay, dataset=run.dataset, task=run.task,
                               step=ctx.step, per_class=self.params["images_per_class"],
                               crop_size=run.data.crop_size, flip=run.data.flip)
        self.source = replay.source
        return ReplayMix(dataset, replay, self.params["replay_ratio"])

    def loss(self, batch: Batch) -> torch.Tensor:
        old = old_outputs(batch, self)
        targets = recall_targets(batch.labels, old["logits"],
                                 replay_labels=self.params["replay_labels"],
                                 inpaint_background=self.params["inpaint_background"],
                                 inpaint_ignore=self.params["inpaint_ignore"])
        return F.cross_entropy(batch.out["logits"], targets, ignore_index=255)

    def state_dict(self, full: bool = False) -> dict[str, Any]:
        """The replay source, recorded in the checkpoint (and from there in metrics.json)."""
        return {"replay_source": self.source} if self.source else {}
