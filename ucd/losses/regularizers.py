"""Quadratic parameter regularisers (EWC, PI, RW) and their importance estimators.

Model-agnostic: parameters, gradients and importances are dicts name -> tensor (e.g.
``dict(model.named_parameters())`` and ``{n: p.grad for n, p in ...}``). The penalty is

    penalty = sum_n sum_i importance[n]_i * (theta[n]_i - theta_old[n]_i)^2

over the names present in both ``old_params`` and ``importance`` (parameters added at this
step, such as a new classifier head, have no anchor and are free). The caller multiplies it by
the method's weight (protocol: EWC 500, PI 500, RW 100).

Importance estimators, following the protocol (facts from MiB's implementation, whose EWC / PI /
RW numbers the paper's tables reuse):

- ``FisherEMA`` (EWC): diagonal empirical Fisher as an exponential moving average of squared
  gradients updated at every iteration, F <- alpha g^2 + (1 - alpha) F, alpha = 0.9. It is
  carried across steps (initialised from the previous step's F; ones for new parameters).
- ``PathIntegral`` (PI, a.k.a. SI): omega accumulates -g * delta_theta at every optimiser
  step; at the end of the step the score is omega / ((theta_end - theta_start)^2 + eps),
  clamped at 0, plus the previous steps' score (sums across steps, as MiB). eps = 1e-20 as in
  MiB: a parameter that barely moved then gets a huge score.
- ``RiemannianWalk`` (RW): a FisherEMA plus a path score computed every ``every`` = 10
  optimiser steps: the path integral of the window divided by 0.5 * F * (window displacement)^2
  + eps, accumulated, clamped at 0 and averaged with the previous step's score.

``variant`` selects how the path integral pairs gradients with displacements:

- ``"ours"`` (default): as SI defines it, each displacement times the gradient that produced
  it, -g_t * (theta_{t+1} - theta_t); RW sums these over its window.
- ``"mib"``: as MiB's code (utils/regularizer.py), which updates its estimators after the
  task loss's backward pass at iteration t, when theta_t is the current point: PI adds
  -g_t * (theta_t - theta_{t-1}), the *previous* step's displacement times the *next*
  gradient (the first call has no displacement, the last displacement no gradient); RW, every
  ``every`` iterations, adds -g_t * D / (0.5 * F * D^2 + eps) with D = theta_t - theta_{t-10}
  the window's displacement, g_t the gradient at its end and F the Fisher before this
  iteration's update. With minibatch noise, g_t is nearly uncorrelated with the step just
  taken (g_{t-1} produced it), so MiB's PI score is mostly noise clamped at 0 (hence a near-zero
  correlation with SI's); RW's importance is dominated by its normalised Fisher, shared by both.

At the next step the importance is min-max normalised per tensor, (x - min) / (max - min +
1e-8): ``ewc_importance``, ``pi_importance`` and ``rw_importance`` (normalised F + normalised
score). Feed the estimators the gradients of the task loss (MiB updates them after the task
loss's backward pass and before the penalty's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "VARIANTS",
    "FisherEMA",
    "PathIntegral",
    "RiemannianWalk",
    "estimator_from_state",
    "estimator_state",
    "ewc_importance",
    "minmax_normalize",
    "pi_importance",
    "quadratic_penalty",
    "rw_importance",
]

TensorDict = Mapping[str, Tensor]
VARIANTS = ("ours", "mib")


def _check_dict(name: str, d: object) -> Mapping[str, Tensor]:
    if not isinstance(d, Mapping):
        raise TypeError(f"{name} must be a dict name -> tensor, got {type(d).__name__}")
    for k, v in d.items():
        if not isinstance(v, Tensor):
            raise TypeError(f"{name}[{k!r}] must be a tensor, got {type(v).__name__}")
    return d


def _check_shape(name: str, a: Tensor, b: Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"parameter {name!r}: shape {tuple(a.shape)} differs from {what} {tuple(b.shape)}"
        )


def quadratic_penalty(params: TensorDict, old_params: TensorDict, importance: TensorDict) -> Tensor:
    """sum importance * (params - old_params)^2 over the names the three dicts share."""
    _check_dict("params", params)
    _check_dict("old_params", old_params)
    _check_dict("importance", importance)
    names = [n for n in params if n in old_params and n in importance]
    if not names:
        raise ValueError(
            "params, old_params and importance share no parameter name: check the naming"
        )
    total = None
    for n in names:
        p = params[n]
        _check_shape(n, p, old_params[n], "old_params")
        _check_shape(n, p, importance[n], "importance")
        old = old_params[n].detach().to(p.device, p.dtype)
        imp = importance[n].detach().to(p.device, p.dtype)
        term = (imp * (p - old).pow(2)).sum()
        total = term if total is None else total + term
    return total


def minmax_normalize(importance: TensorDict, eps: float = 1e-8) -> dict[str, Tensor]:
    """Per-tensor min-max normalisation (x - min) / (max - min + eps), as MiB does."""
    _check_dict("importance", importance)
    return {n: (t - t.min()) / (t.max() - t.min() + eps) for n, t in importance.items()}


def ewc_importance(fisher: TensorDict) -> dict[str, Tensor]:
    """EWC's importance at the next step: the normalised Fisher."""
    return minmax_normalize(fisher)


def pi_importance(score: TensorDict) -> dict[str, Tensor]:
    """PI's importance at the next step: the normalised path-integral score."""
    return minmax_normalize(score)


def rw_importance(fisher: TensorDict, score: TensorDict) -> dict[str, Tensor]:
    """RW's importance at the next step: normalised Fisher + normalised score."""
    f, s = minmax_normalize(fisher), minmax_normalize(score)
    return {n: f[n] + s[n] if n in s else f[n] for n in f}


def _snapshot(params: TensorDict) -> dict[str, Tensor]:
    return {n: p.detach().clone() for n, p in params.items()}


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}")
    return variant


class FisherEMA:
    """Online diagonal Fisher: F <- alpha * g^2 + (1 - alpha) * F at every ``after_backward``."""

    def __init__(
        self, params: TensorDict, *, alpha: float = 0.9, previous: TensorDict | None = None
    ) -> None:
        _check_dict("params", params)
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        previous = _check_dict("previous", previous or {})
        self.fisher: dict[str, Tensor] = {}
        for n, p in params.items():
            if n in previous:
                _check_shape(n, p, previous[n], "previous Fisher")
                self.fisher[n] = previous[n].detach().clone().to(p.device, p.dtype)
            else:
                self.fisher[n] = torch.ones_like(p, requires_grad=False)

    @torch.no_grad()
    def after_backward(self, grads: Mapping[str, Tensor | None]) -> None:
        """Update with the current gradients (None entries are skipped)."""
        for n, g in grads.items():
            if g is None or n not in self.fisher:
                continue
            self.fisher[n] = self.alpha * g.detach().pow(2) + (1 - self.alpha) * self.fisher[n]

    def state(self) -> dict[str, Tensor]:
        """The Fisher to carry to the next step."""
        return {n: f.clone() for n, f in self.fisher.items()}


@torch.no_grad()
def _accumulate_path(
    acc: dict[str, Tensor], grads: Mapping[str, Tensor], last: dict[str, Tensor], params: TensorDict
) -> None:
    """Path integral of one optimiser step: acc -= g * (theta_new - theta_old); last <- new."""
    for n, p in params.items():
        if n not in last:
            continue
        if n in grads:
            acc[n] -= grads[n] * (p.detach() - last[n])
        last[n] = p.detach().clone()


class PathIntegral:
    """Path-integral (SI / PI) importance: omega += -g * delta_theta at every optimiser step
    (``variant`` "mib": the displacement of the step before the gradient, see module doc)."""

    def __init__(
        self,
        params: TensorDict,
        *,
        eps: float = 1e-20,
        previous: TensorDict | None = None,
        variant: str = "ours",
    ) -> None:
        _check_dict("params", params)
        self.eps, self.variant = eps, _check_variant(variant)
        self.start = _snapshot(params)
        self.last = _snapshot(params)
        self.before: dict[str, Tensor] | None = None  # "mib": parameters before the last step
        self.omega = {n: torch.zeros_like(p, requires_grad=False) for n, p in self.start.items()}
        self.grads: dict[str, Tensor] = {}
        self.previous = {n: t.detach() for n, t in _check_dict("previous", previous or {}).items()}

    @torch.no_grad()
    def after_backward(self, grads: Mapping[str, Tensor | None]) -> None:
        """Remember the gradients that the next optimiser step will use ("mib": pair them with
        the step just taken)."""
        grads = {n: g.detach() for n, g in grads.items() if g is not None}
        if self.variant == "ours":
            self.grads = {n: g.clone() for n, g in grads.items()}
        elif self.before is not None:
            for n, g in grads.items():
                if n in self.omega:
                    self.omega[n] -= g * (self.last[n] - self.before[n])

    @torch.no_grad()
    def after_optimizer_step(self, params: TensorDict) -> None:
        """Accumulate -g * (theta_new - theta_old) for the step just taken ("ours")."""
        if self.variant == "mib":
            self.before, self.last = self.last, _snapshot(params)
            return
        _accumulate_path(self.omega, self.grads, self.last, params)
        self.grads = {}

    @torch.no_grad()
    def score(self) -> dict[str, Tensor]:
        """omega / ((theta_end - theta_start)^2 + eps), clamped at 0, plus the previous score."""
        out = {}
        for n, w in self.omega.items():
            s = (w / ((self.last[n] - self.start[n]).pow(2) + self.eps)).clamp(min=0.0)
            if n in self.previous:
                _check_shape(n, s, self.previous[n], "previous score")
                s = s + self.previous[n].to(s.device, s.dtype)
            out[n] = s
        return out


class RiemannianWalk:
    """RW importance: Fisher EMA at every iteration + a path score every ``every`` steps
    (``variant`` "mib": the window's end gradient times its displacement, see module doc)."""

    def __init__(
        self,
        params: TensorDict,
        *,
        alpha: float = 0.9,
        every: int = 10,
        eps: float = 1e-8,
        previous_fisher: TensorDict | None = None,
        previous_score: TensorDict | None = None,
        variant: str = "ours",
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        self.variant = _check_variant(variant)
        self.fisher = FisherEMA(params, alpha=alpha, previous=previous_fisher)
        self.every, self.eps = every, eps
        self.window_start = _snapshot(params)
        self.last = _snapshot(params)
        ours = self.variant == "ours"  # "mib" keeps no path integral
        self.path = {n: torch.zeros_like(p) for n, p in self.last.items()} if ours else {}
        self.raw = {n: torch.zeros_like(p) for n, p in self.last.items()}
        self.grads: dict[str, Tensor] = {}
        self.count = 0
        prev = _check_dict("previous_score", previous_score or {})
        self.previous = {n: t.detach() for n, t in prev.items()}

    @torch.no_grad()
    def after_backward(self, grads: Mapping[str, Tensor | None]) -> None:
        """Update the Fisher and remember the gradients of the coming optimiser step ("mib": at
        a window's end, first add its score with this gradient and the Fisher so far)."""
        if self.variant == "mib" and self.count > 0 and self.count % self.every == 0:
            for n, g in grads.items():
                if g is None or n not in self.raw:
                    continue
                moved = self.last[n] - self.window_start[n]
                den = 0.5 * self.fisher.fisher[n] * moved.pow(2) + self.eps
                self.raw[n] -= g.detach() * moved / den
                self.window_start[n] = self.last[n].clone()
        self.fisher.after_backward(grads)
        if self.variant == "ours":
            self.grads = {n: g.detach().clone() for n, g in grads.items() if g is not None}

    @torch.no_grad()
    def after_optimizer_step(self, params: TensorDict) -> None:
        """Accumulate the window's path integral; every ``every`` steps, turn it into score."""
        self.count += 1
        if self.variant == "mib":
            self.last = _snapshot(params)
            return
        _accumulate_path(self.path, self.grads, self.last, params)
        self.grads = {}
        if self.count % self.every == 0:
            for n, path in self.path.items():
                moved = self.last[n] - self.window_start[n]
                den = 0.5 * self.fisher.fisher[n] * moved.pow(2) + self.eps
                self.raw[n] += path / den
                path.zero_()
                self.window_start[n] = self.last[n].clone()

    def score(self) -> dict[str, Tensor]:
        """Clamped score, averaged with the previous step's score where there is one."""
        out = {}
        for n, s in self.raw.items():
            s = s.clamp(min=0.0)
            if n in self.previous:
                _check_shape(n, s, self.previous[n], "previous score")
                s = 0.5 * (s + self.previous[n].to(s.device, s.dtype))
            out[n] = s
        return out

    def state(self) -> dict[str, dict[str, Tensor]]:
        """What to carry to the next step: {"fisher": ..., "score": ...}."""
        return {"fisher": self.fisher.state(), "score": self.score()}


_ESTIMATORS = {cls.__name__: cls for cls in (FisherEMA, PathIntegral, RiemannianWalk)}
_KIND = "__estimator__"


def estimator_state(estimator: FisherEMA | PathIntegral | RiemannianWalk) -> dict[str, Any]:
    """An estimator's whole mid-step state as plain data (its attributes: tensors, dicts of
    tensors, numbers, strings; a nested estimator likewise), so that a resumable state holding
    it loads with ``torch.load(weights_only=True)``."""
    if type(estimator) not in _ESTIMATORS.values():
        raise TypeError(f"not an importance estimator: {type(estimator).__name__}")
    return {_KIND: type(estimator).__name__,
            **{k: estimator_state(v) if type(v) in _ESTIMATORS.values() else v
               for k, v in vars(estimator).items()}}


def estimator_from_state(state: Mapping[str, Any]) -> FisherEMA | PathIntegral | RiemannianWalk:
    """The estimator :func:`estimator_state` saved (its class chosen from an allow-list)."""
    kind = state.get(_KIND) if isinstance(state, Mapping) else None
    if kind not in _ESTIMATORS:
        raise ValueError(f"not a saved importance estimator (kind {kind!r}; known: "
                         f"{', '.join(_ESTIMATORS)})")
    estimator = object.__new__(_ESTIMATORS[kind])
    for key, value in state.items():
        if key != _KIND:
            nested = isinstance(value, Mapping) and _KIND in value
            setattr(estimator, key, estimator_from_state(value) if nested else value)
    return estimator
