"""Methods as data: a method is a list of weighted loss terms, a label policy and hooks.

The engine knows nothing about any particular method. At each step it builds the method's terms,
calls their hooks (``before_step``, ``after_backward``, ``after_step``) and sums their losses. A
term is a thin adapter around a pure loss of ``ucd.losses``; composing methods (MiB+UCD = MiB's
terms + the UCD term) is a matter of listing terms in ``methods.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ucd.data.tasks import Task
from ucd.facts.config import RunConfig
from ucd.facts.spec import StepSpec


@dataclass
class Clock:
    """Where a training step is: the one object holding its counters. The engine advances it
    (``tick`` after every global batch, ``end_epoch``), the terms read it, a resumed step
    restores it."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # global batches done in the current epoch
    iteration: int = 0  # global batches done in the step (optimiser steps, skipped ones too)
    max_iterations: int = 0  # the step's iterations (the poly schedule's horizon)

    def tick(self) -> None:
        """One global batch done."""
        self.iteration += 1
        self.batch += 1

    def end_epoch(self) -> None:
        """The epoch's batches done: the next epoch starts at its first batch."""
        self.epoch += 1
        self.batch = 0


@dataclass
class StepContext:
    """What a term sees of the current step."""

    run: RunConfig
    task: Task
    step: int
    model: nn.Module
    old_model: nn.Module | None
    device: torch.device
    loader: Any = None  # the step's training DataLoader (for hooks that pass over the data)
    prev_state: dict[str, Any] = field(default_factory=dict)  # terms' state of the last step
    clock: Clock | None = None  # None: a new clock at this step

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = Clock(step=self.step)

    @property
    def iteration(self) -> int:
        """Global batches done in the step (the clock's)."""
        return self.clock.iteration

    @iteration.setter
    def iteration(self, value: int) -> None:
        self.clock.iteration = value

    @property
    def max_iterations(self) -> int:
        """The step's iterations (the clock's)."""
        return self.clock.max_iterations

    @property
    def n_old(self) -> int:
        """T_{k-1}: classes (with background) known before this step."""
        return len(self.task.classes_seen(self.step - 1)) if self.step > 0 else 0

    @property
    def new_classes(self) -> list[int]:
        return self.task.new_classes(self.step)


@dataclass
class Batch:
    """One training batch with the new model's and (if any) the frozen old model's outputs."""

    images: torch.Tensor
    labels: torch.Tensor
    out: dict[str, Any]
    old_out: dict[str, Any] | None
    ctx: StepContext

    def select(self, lo: int, hi: int) -> Batch:
        """Images lo..hi-1 of the batch with their labels and both models' outputs (e.g. the
        images one device of a data-parallel job holds)."""
        return Batch(self.images[lo:hi], self.labels[lo:hi], _rows(self.out, lo, hi),
                     _rows(self.old_out, lo, hi), self.ctx)


def _rows(value: Any, lo: int, hi: int) -> Any:
    """Rows lo..hi-1 (first dimension) of every tensor in nested dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        return value[lo:hi]
    if isinstance(value, dict):
        return {k: _rows(v, lo, hi) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_rows(v, lo, hi) for v in value)
    return value


class Term:
    """A loss term: ``weight * loss(batch)``, with optional hooks and persistent state."""

    name: ClassVar[str] = ""
    needs_old_model: ClassVar[bool] = False
    batch_coupled: ClassVar[bool] = False  # the loss of an image depends on the batch's others
    replays: ClassVar[bool] = False  # trains on a replay set (run.data.replay) at steps >= 1
    defaults: ClassVar[dict[str, Any]] = {"weight": 1.0}

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"term {self.name!r} got unknown parameters {sorted(unknown)}; "
                f"valid: {sorted(self.defaults)}"
            )
        self.params = {**self.defaults, **params}
        weight = self.params["weight"]
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
            raise ValueError(f"term {self.name!r}: weight must be a number >= 0, got {weight!r}")
        self.weight = float(weight)

    def loss(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def before_step(self, ctx: StepContext) -> None:
        """Called once before the first iteration of the step."""

    def after_backward(self, ctx: StepContext) -> None:
        """Called after every backward pass, before the optimiser step."""

    def after_optimizer_step(self, ctx: StepContext) -> None:
        """Called after every optimiser step."""

    def adapt_model(self, model: nn.Module, spec: StepSpec) -> None:
        """Called once when a step >= 1 has grown the model by the step's new head, before
        training (and not on resume: the resumable state holds the adapted weights). A method
        names the term that initialises its new heads in methods.yaml (``init``)."""

    def cost_kind(self) -> str | None:
        """What this term costs beyond a plain step, as the cost model names it (None: it
        adds nothing beyond the models' forward passes)."""
        return None

    def training_data(self, ctx: StepContext, dataset: Any) -> Any:
        """The step's training dataset, possibly extended (e.g. replayed images); called once
        before the data loader is built."""
        return dataset

    def after_step(self, ctx: StepContext) -> None:
        """Called once after the last iteration (e.g. to compute parameter importance)."""

    def state_dict(self, full: bool = False) -> dict[str, Any]:
        """State carried to the next step inside the checkpoint.

        ``full=True`` adds whatever mid-step state a resumed step needs (e.g. running sums).
        """
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state saved by ``state_dict(full=True)`` when a step resumes."""


TERMS: dict[str, type[Term]] = {}


def register_term(cls: type[Term]) -> type[Term]:
    """Class decorator adding a term to the registry under ``cls.name``."""
    if not cls.name or cls.name in TERMS:
        raise ValueError(f"term name {cls.name!r} is empty or registered twice")
    TERMS[cls.name] = cls
    return cls


LABEL_POLICIES = ("never", "incremental", "always")


@dataclass(frozen=True)
class Method:
    """A method definition from methods.yaml: weighted loss terms, label policy, head init."""

    name: str
    description: str
    terms: dict[str, dict[str, Any]]
    labels: dict[str, str] = field(default_factory=lambda: {"ignore_to_background": "never"})
    init: str = "none"  # the term whose adapt_model hook initialises a new head, or "none"
    joint: bool = False  # one step on all data and all classes
    step0: str = "ft"  # "own", or the method whose (shared) step 0 this method reuses

    @property
    def shares_step0(self) -> bool:
        """Whether step 0 is another method's step 0 (trained once, shared)."""
        return self.step0 != "own" and not self.joint

    def default_params(self) -> dict[str, dict[str, Any]]:
        """Every term's parameters with defaults filled in (the method's own values first)."""
        return {t: {**TERMS[t].defaults, **(p or {})} for t, p in self.terms.items()}

    def build_terms(self, params: dict[str, dict[str, Any]], step: int) -> list[Term]:
        """The terms of a step: terms of weight 0 are left out; at step 0, terms needing an
        old model are left out. (Who trains the step 0 a method shares is the plan's
        decision: that training is its owner's run, built with the owner's terms.)"""
        terms = [TERMS[t](**params.get(t, {})) for t in self.terms]
        if step == 0:
            terms = [t for t in terms if not t.needs_old_model]
        terms = [t for t in terms if t.weight != 0.0]
        if not terms:
            raise ValueError(f"method {self.name!r} has no term of non-zero weight at step {step}")
        return terms

    @property
    def replays(self) -> bool:
        """Whether the method's steps >= 1 train on a replay set (e.g. RECALL)."""
        return any(TERMS[t].replays for t in self.terms)

    def needs_old_model(self, step: int) -> bool:
        return step > 0 and any(TERMS[t].needs_old_model for t in self.terms)
