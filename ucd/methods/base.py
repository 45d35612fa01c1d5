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


@dataclass
class StepContext:
    """What a term sees of the current step."""

    run: dict[str, Any]
    task: Task
    step: int
    model: nn.Module
    old_model: nn.Module | None
    device: torch.device
    loader: Any = None  # the step's training DataLoader (for hooks that pass over the data)
    prev_state: dict[str, Any] = field(default_factory=dict)  # terms' state of the last step
    iteration: int = 0
    max_iterations: int = 0

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


class Term:
    """A loss term: ``weight * loss(batch)``, with optional hooks and persistent state."""

    name: ClassVar[str] = ""
    needs_old_model: ClassVar[bool] = False
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


@dataclass(frozen=True)
class Method:
    """A method definition from methods.yaml."""

    name: str
    description: str
    terms: dict[str, dict[str, Any]]
    ignore_to_background: bool = False  # label policy at incremental steps (MiB's choice)
    init: str = "none"  # "mib": new heads initialised from the background row
    joint: bool = False  # one step on all data and all classes
    step0: str = "shared"  # "shared": step 0 is plain cross-entropy; "own": method-specific

    def default_params(self) -> dict[str, dict[str, Any]]:
        """Every term's parameters with defaults filled in (the method's own values first)."""
        return {t: {**TERMS[t].defaults, **(p or {})} for t, p in self.terms.items()}

    def build_terms(self, params: dict[str, dict[str, Any]], step: int) -> list[Term]:
        """Instantiate the terms for a step: step 0 of a shared method is plain cross-entropy."""
        if step == 0 and not self.joint and self.step0 == "shared":
            return [TERMS["ce"]()]
        terms = [TERMS[t](**params.get(t, {})) for t in self.terms]
        if step == 0:  # a method that trains its own step 0 has no old model there
            terms = [t for t in terms if not t.needs_old_model]
        return [t for t in terms if t.weight != 0.0 or t.name == "ce"]

    def needs_old_model(self, step: int) -> bool:
        return step > 0 and any(TERMS[t].needs_old_model for t in self.terms)
