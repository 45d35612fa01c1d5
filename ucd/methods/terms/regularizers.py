"""Parameter-regularisation terms EWC, PI and RW: penalty + importance estimated during the step.

These methods train their own step 0 (``step0: own``) to estimate importance there. At step k
the anchor is the model at the start of the step (the previous step's weights) and the
importance is the min-max normalised estimate saved by step k-1 (``prev_state[name]``); the
estimators themselves carry across steps (Fisher as an EMA, PI's score summed, RW's averaged).

Gradient fed to the estimators: the engine does one backward over the sum of every term, but
the estimators must see the gradient of the task loss only (as MiB). The penalty's own gradient
is known in closed form, 2 * weight * importance * (theta - anchor), so ``after_backward``
subtracts it from ``p.grad``: the estimators get exactly the gradient of the other terms
(weight decay is applied inside the optimiser, after this hook, so it is not included either).
"""

from __future__ import annotations

from typing import Any

import torch

from ucd.losses import (
    FisherEMA,
    PathIntegral,
    RiemannianWalk,
    ewc_importance,
    pi_importance,
    quadratic_penalty,
    rw_importance,
)
from ucd.losses.regularizers import VARIANTS, estimator_from_state, estimator_state
from ucd.methods.base import Batch, StepContext, Term, register_term
from ucd.methods.terms.common import check_choice, to_device, zero_loss


class _ParameterRegulariser(Term):
    """Common part: anchor + importance (from the previous step), estimator of this step."""

    state_keys: tuple[str, ...] = ()

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.anchor: dict[str, torch.Tensor] = {}
        self.importance: dict[str, torch.Tensor] = {}
        self.estimator: Any = None
        self._moved = True

    # -- to specialise -------------------------------------------------------------------
    def make_estimator(self, params: dict[str, torch.Tensor], prev: dict[str, Any] | None):
        raise NotImplementedError

    def importance_from(self, prev: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def carried(self) -> dict[str, Any]:
        """The estimate saved for the next step."""
        raise NotImplementedError

    # -- hooks ---------------------------------------------------------------------------
    @staticmethod
    def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {n: p for n, p in model.named_parameters() if p.requires_grad}

    def before_step(self, ctx: StepContext) -> None:
        params = self._params(ctx.model)
        prev = None
        if ctx.step > 0:
            prev = ctx.prev_state.get(self.name)
            missing = [k for k in self.state_keys if not prev or k not in prev]
            if missing:
                raise ValueError(
                    f"term {self.name!r} at step {ctx.step} needs {missing} saved by step "
                    f"{ctx.step - 1} in the checkpoint's method_state; train step {ctx.step - 1} "
                    f"with a method that has the {self.name!r} term (step0: own)"
                )
            prev = to_device(prev, ctx.device)
            self.importance = {n: t for n, t in self.importance_from(prev).items() if n in params}
            self.anchor = {n: params[n].detach().clone() for n in self.importance}
        self.estimator = self.make_estimator(params, prev)

    def _ensure_device(self, device: torch.device) -> None:
        if not self._moved:  # after a resume, the state was loaded on the CPU
            self.anchor = to_device(self.anchor, device)
            self.importance = to_device(self.importance, device)
            to_device(self.estimator, device)
            self._moved = True

    def loss(self, batch: Batch) -> torch.Tensor:
        self._ensure_device(batch.out["logits"].device)
        if not self.anchor:  # step 0: nothing to keep yet, importance is being estimated
            return zero_loss(batch)
        return quadratic_penalty(dict(batch.ctx.model.named_parameters()), self.anchor,
                                 self.importance)

    @torch.no_grad()
    def task_gradients(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """``p.grad`` minus the penalty's own gradient: the gradient of the other terms."""
        grads = {}
        for n, p in self._params(ctx.model).items():
            if p.grad is None:
                continue
            g = p.grad
            if n in self.anchor:
                g = g - 2.0 * self.weight * self.importance[n] * (p - self.anchor[n])
            grads[n] = g
        return grads

    def after_backward(self, ctx: StepContext) -> None:
        self._ensure_device(ctx.device)
        self.estimator.after_backward(self.task_gradients(ctx))

    def after_optimizer_step(self, ctx: StepContext) -> None:
        if hasattr(self.estimator, "after_optimizer_step"):
            self.estimator.after_optimizer_step(self._params(ctx.model))

    def state_dict(self, full: bool = False) -> dict[str, Any]:
        if self.estimator is None:
            return {}
        if not full:
            return to_device(self.carried(), torch.device("cpu"))
        return {"anchor": self.anchor, "importance": self.importance,
                "estimator": estimator_state(self.estimator)}  # plain data: weights_only loads

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.anchor, self.importance = state["anchor"], state["importance"]
        self.estimator = estimator_from_state(state["estimator"])
        self._moved = False


@register_term
class EWC(_ParameterRegulariser):
    """EWC: penalty weighted by the normalised Fisher, an EMA (alpha 0.9) of squared task
    gradients kept across steps."""

    name = "ewc"
    defaults = {"weight": 500.0, "alpha": 0.9}
    state_keys = ("fisher",)

    def make_estimator(self, params, prev):
        previous = prev["fisher"] if prev else None
        return FisherEMA(params, alpha=float(self.params["alpha"]), previous=previous)

    def importance_from(self, prev):
        return ewc_importance(prev["fisher"])

    def carried(self):
        return {"fisher": self.estimator.state()}


@register_term
class PI(_ParameterRegulariser):
    """PI (path integral / SI): penalty weighted by the normalised path-integral score, summed
    over steps. ``importance: ours`` pairs each displacement with the gradient that produced
    it (SI); ``mib`` with the next iteration's gradient, as MiB's code (docs/deviations.md)."""

    name = "pi"
    defaults = {"weight": 500.0, "eps": 1e-20, "importance": "ours"}
    state_keys = ("score",)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_choice(self.name, "importance", self.params["importance"], VARIANTS)

    def make_estimator(self, params, prev):
        previous = prev["score"] if prev else None
        return PathIntegral(params, eps=float(self.params["eps"]), previous=previous,
                            variant=self.params["importance"])

    def importance_from(self, prev):
        return pi_importance(prev["score"])

    def carried(self):
        return {"score": self.estimator.score()}


@register_term
class RW(_ParameterRegulariser):
    """RW (Riemannian Walk): normalised Fisher EMA + normalised path score (updated every
    ``every`` iterations, averaged with the previous step's). ``importance: ours`` scores a
    window with its path integral; ``mib`` with its end gradient times its displacement, as
    MiB's code (docs/deviations.md)."""

    name = "rw"
    defaults = {"weight": 100.0, "alpha": 0.9, "every": 10, "importance": "ours"}
    state_keys = ("fisher", "score")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_choice(self.name, "importance", self.params["importance"], VARIANTS)

    def make_estimator(self, params, prev):
        return RiemannianWalk(
            params, alpha=float(self.params["alpha"]), every=self.params["every"],
            previous_fisher=prev["fisher"] if prev else None,
            previous_score=prev["score"] if prev else None,
            variant=self.params["importance"],
        )

    def importance_from(self, prev):
        return rw_importance(prev["fisher"], prev["score"])

    def carried(self):
        return self.estimator.state()
