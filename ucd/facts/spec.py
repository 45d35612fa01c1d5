"""The step spec: one training step fully resolved, as facts the engine, evaluation, cost and
reporting read instead of asking the method or the task registry again.

A :class:`StepSpec` is the run config (:class:`~ucd.facts.config.RunConfig`, the serialised form a
job receives as ``--run-json`` and writes as run.yaml) plus every fact derived from the method
and the task: classes per head, the step evaluation scores, whether the step starts from the
previous checkpoint and keeps a frozen old model, the label policy at this step, the terms with
their typed parameters, and the key that decides shared trainings. The facts are derived in one
place, :func:`ucd.methods.step_spec` (the method layer), which the plan calls for every step and
a training job calls on the run config it receives: a pure function of the run config and the
packaged data (methods.yaml, tasks.yaml), so the job's spec is the plan's.

This module sits below the plan and the method layer: it imports only :mod:`ucd.facts.config`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from ucd.facts.config import RunConfig, config_hash

# Fields that do not change what a training computes (left out of a shared training's key).
VOLATILE = {
    "data": ("split", "num_workers"),
    "train": ("checkpoint_every_s", "log_every_s", "threads"),
    "eval": ("batch_size", "predictions"),
}


def training_key(run: RunConfig) -> dict[str, Any]:
    """What a training computes: the run config without its path names and volatile fields."""
    data = run.to_dict()
    for section, keys in VOLATILE.items():
        for key in keys:
            data[section].pop(key)
    for key in ("method", "seed"):
        data.pop(key)
    return data


def paper_columns(task: Any, step: int) -> tuple[list[int], list[int]]:
    """(old, new) classes of the paper's columns after ``step`` of a task
    (:class:`~ucd.data.tasks.Task`): step 0's without background, and every class added after
    step 0 and seen by then."""
    return task.base_classes, task.added_classes(step)


@dataclass(frozen=True)
class TermSpec:
    """One loss term of a step: its registered name, its parameters (defaults filled in,
    read-only) and the facts the engine and the cost model read from it."""

    name: str
    params: Mapping[str, Any]
    weight: float
    needs_old_model: bool
    batch_coupled: bool
    replays: bool
    cost_kind: str | None  # what the term costs beyond a plain step (e.g. "ucd+bg"), or None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for --explain and tests)."""
        return {"name": self.name, "params": dict(self.params), "weight": self.weight,
                "needs_old_model": self.needs_old_model, "batch_coupled": self.batch_coupled,
                "replays": self.replays, "cost_kind": self.cost_kind}


@dataclass(frozen=True)
class StepSpec:
    """One training step, resolved: the run config and the facts derived from its method.

    ``shared`` is the spec of the shared training that provides this step (a step 0 that
    another method trains once, or Joint), or None when the step trains itself; ``group`` is
    then that training's directory name under ``_shared/``.
    """

    run: RunConfig
    classes: tuple[tuple[int, ...], ...]  # classes per head of the model after this step
    new_classes: tuple[int, ...]  # the head this step adds (step 0: the first head)
    eval_step: int  # the task step whose seen classes the evaluation scores (Joint: the last)
    n_steps: int  # steps of the task
    columns: tuple[tuple[int, ...], tuple[int, ...]]  # the paper's (old, new) columns
    takes_previous: bool  # starts from the previous step's checkpoint
    needs_old_model: bool  # keeps a frozen copy of the previous step's model
    all_classes: bool  # one step on every image with every class labelled (Joint)
    ignore_to_background: bool  # 255 becomes background in this step's training labels
    head_init: str  # the term whose adapt_model hook initialises the new head, or "none"
    terms: tuple[TermSpec, ...]
    key: str  # hash of what the training computes (training_key): equal keys, one training
    shared: StepSpec | None = None
    group: str | None = None

    @property
    def trained(self) -> StepSpec:
        """The spec of the training that produces this step's checkpoint."""
        return self.shared if self.shared is not None else self

    @property
    def replays(self) -> bool:
        """Whether the step trains on a replay set."""
        return any(t.replays for t in self.terms)

    @property
    def classes_seen(self) -> list[int]:
        """Every class the model after this step predicts, in class order."""
        return sorted(c for head in self.classes for c in head)

    @classmethod
    def from_facts(cls, run: RunConfig, facts: Mapping[str, Any],
                   where: str = "step facts") -> StepSpec:
        """A spec from its run config and the facts a checkpoint recorded (``facts()``)."""
        names = {f.name for f in fields(cls)} - {"run", "shared", "group"}
        if not isinstance(facts, Mapping) or set(facts) != names:
            missing = sorted(names - set(facts)) if isinstance(facts, Mapping) else sorted(names)
            raise ValueError(f"{where}: not the facts of a step spec (missing {missing}); a "
                             "checkpoint written before step specs: retrain the step")
        values = dict(facts)
        values["classes"] = tuple(tuple(c) for c in values["classes"])
        values["new_classes"] = tuple(values["new_classes"])
        values["columns"] = tuple(tuple(c) for c in values["columns"])
        values["terms"] = tuple(TermSpec(**t) for t in values["terms"])
        return cls(run=run, **values)

    def cost_kind(self) -> str:
        """plain (one model), old (+ a frozen old model's forward), or the costly terms the
        step trains with (e.g. ucd, ucd+bg, pixcon)."""
        labels = [t.cost_kind for t in self.terms if t.cost_kind]
        if labels:
            return "+".join(labels)
        return "old" if self.needs_old_model else "plain"

    def facts(self) -> dict[str, Any]:
        """The derived facts as plain data (lists, not tuples): what a checkpoint records
        beside its run config, read back by :meth:`from_facts`."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("run", "shared", "group")}
        out["terms"] = [t.to_dict() for t in self.terms]
        return json.loads(json.dumps(out))


def sharing_key(run: RunConfig) -> str:
    """The hash of what a training computes: two steps with the same key are one training."""
    return config_hash(training_key(run))
