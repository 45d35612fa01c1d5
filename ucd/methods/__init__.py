"""Method registry: ``methods.yaml`` (data) + loss-term adapters (``terms/``), and the one
place where a step's method facts are derived (:func:`step_spec`)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import torch
import yaml
from torch import nn

from ucd.data.tasks import get_task
from ucd.facts.config import ConfigError, LabelsConfig, RunConfig
from ucd.facts.spec import StepSpec, TermSpec, paper_columns, sharing_key
from ucd.methods import terms as _terms  # noqa: F401  (registers the terms)
from ucd.methods.base import (
    LABEL_POLICIES,
    TERMS,
    Batch,
    Clock,
    Method,
    StepContext,
    Term,
    register_term,
)

__all__ = [
    "TERMS",
    "Batch",
    "Clock",
    "Method",
    "StepContext",
    "Term",
    "build_adapters",
    "build_terms",
    "check_terms",
    "default_spec",
    "describe_methods",
    "get_method",
    "list_methods",
    "register_term",
    "step_context",
    "step_spec",
]

_FIELDS = {"description", "terms", "labels", "init", "joint", "step0", "base"}
_INHERITED = ("terms", "labels", "init")  # what `base: m` takes from m


def _check_entry(name: str, entry: dict, fields: dict) -> None:
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ValueError(f"methods.yaml: {name} has unknown fields {sorted(unknown)}; "
                         f"valid: {sorted(_FIELDS)}")
    for t in fields["terms"]:
        if t not in TERMS:
            raise ValueError(
                f"methods.yaml: {name} uses unknown term {t!r}; known: {sorted(TERMS)}"
            )
    policy = fields.get("labels", {}).get("ignore_to_background", "never")
    if set(fields.get("labels", {})) - {"ignore_to_background"} or policy not in LABEL_POLICIES:
        raise ValueError(f"methods.yaml: {name}.labels must be {{ignore_to_background: "
                         f"{' | '.join(LABEL_POLICIES)}}}, got {fields.get('labels')!r}")
    init = fields.get("init", "none")
    adapters = sorted(n for n, c in TERMS.items() if c.adapt_model is not Term.adapt_model)
    if init != "none" and init not in adapters:
        raise ValueError(f"methods.yaml: {name}.init must be none or a term with an "
                         f"adapt_model hook: {', '.join(adapters)}; got {init!r}")


@cache
def _load() -> dict[str, Method]:
    raw = yaml.safe_load(resources.files("ucd.methods").joinpath("methods.yaml").read_text())
    methods: dict[str, Method] = {}

    def build(name: str, seen: tuple[str, ...] = ()) -> Method:
        if name in methods:
            return methods[name]
        if name not in raw or name in seen:
            raise ValueError(
                f"methods.yaml: {'cyclic' if name in seen else 'unknown'} base {name!r}"
            )
        entry = raw[name]
        fields: dict = {"terms": {}}
        if "base" in entry:  # composition: the base method's terms, then this entry's
            parent = build(entry["base"], (*seen, name))
            fields = {k: getattr(parent, k) for k in _INHERITED}
        fields["terms"] = {**fields["terms"], **(entry.get("terms") or {})}
        for key in ("labels", "init", "joint", "step0"):
            if key in entry:
                fields[key] = entry[key]
        _check_entry(name, entry, fields)
        methods[name] = Method(name=name, description=entry["description"], **fields)
        return methods[name]

    for name in raw:
        build(name)
    owners = {m.step0 for m in methods.values() if m.shares_step0}
    bad = sorted(o for o in owners if o not in methods or methods[o].step0 != o)
    if bad:
        raise ValueError(f"methods.yaml: step0 must be 'own' or a method whose step0 is itself; "
                         f"got {bad}")
    return {n: methods[n] for n in raw}


def describe_methods() -> list[str]:
    """Two lines per method (`ucd methods`): its terms with their default parameters and its
    flags, then its description."""
    lines = []
    for name, m in _load().items():
        terms = ", ".join(f"{t}({', '.join(f'{k}={v}' for k, v in p.items())})"
                          for t, p in m.default_params().items())
        flags = [f"step0={m.step0}", *(["joint"] if m.joint else []),
                 *(["replay at steps >= 1"] if m.replays else []),
                 *([f"init={m.init}"] if m.init != "none" else [])]
        if m.labels["ignore_to_background"] != "never":
            flags.append(f"255->0 {m.labels['ignore_to_background']}")
        lines.append(f"{name:16s} {terms}  [{'; '.join(flags)}]\n{'':16s} {m.description}")
    return lines


def list_methods() -> list[str]:
    """Names of every method, in methods.yaml order."""
    return list(_load())


def get_method(name: str) -> Method:
    """The method called ``name``; a ValueError lists the valid names."""
    methods = _load()
    if name not in methods:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(methods)}")
    return methods[name]


def _term_spec(term: Term) -> TermSpec:
    cls = type(term)
    return TermSpec(name=term.name, params=term.params, weight=term.weight,
                    needs_old_model=cls.needs_old_model, batch_coupled=cls.batch_coupled,
                    replays=cls.replays, cost_kind=term.cost_kind())


def _trained_facts(run: RunConfig, method: Method) -> dict:
    """What a run that trains itself computes: whether it starts from a checkpoint, keeps an
    old model, which labels and terms it trains with, how its new head starts."""
    try:
        terms = method.build_terms(run.params, run.step)
    except ValueError as err:
        raise ConfigError(f"{run.method} step {run.step}: {err}") from err
    incremental = run.step > 0 and not method.joint
    return {"takes_previous": incremental,
            "needs_old_model": incremental and method.needs_old_model(run.step),
            "all_classes": method.joint, "ignore_to_background": run.ignore_to_background,
            "head_init": method.init if incremental else "none",
            "terms": tuple(_term_spec(t) for t in terms), "key": sharing_key(run)}


TRAINED_FACTS = ("takes_previous", "needs_old_model", "all_classes", "ignore_to_background",
                 "head_init", "terms", "key")


def step_spec(run: RunConfig, shared: StepSpec | None = None,
              group: str | None = None) -> StepSpec:
    """The step spec of a run config: every fact its method and task decide, derived here
    once. ``shared`` (with its ``group``) is the shared training that provides the step; the
    plan passes it, and the step's training facts are then that training's. Without it, a
    step 0 that the method shares with its owner is refused: it is the owner's run."""
    method, task = get_method(run.base_method), get_task(run.dataset, run.task)
    if shared is None and run.step == 0 and method.shares_step0 and method.step0 != method.name:
        raise ConfigError(
            f"step 0 of {run.method} is {method.step0}'s shared step 0 (methods.yaml step0: "
            f"{method.step0}): it trains as method {method.step0} (the plan's shared run)")
    last = task.n_steps - 1
    k = last if method.joint else run.step
    classes = [task.classes_seen(last)] if method.joint else task.steps[: run.step + 1]
    facts = (_trained_facts(run, method) if shared is None
             else {f: getattr(shared, f) for f in TRAINED_FACTS})
    return StepSpec(run=run, classes=tuple(tuple(c) for c in classes),
                    new_classes=tuple(classes[-1]), eval_step=k, n_steps=task.n_steps,
                    columns=tuple(tuple(c) for c in paper_columns(task, k)),
                    shared=shared, group=group, **facts)


def build_terms(spec: StepSpec) -> list[Term]:
    """The loss terms a step trains with, built from its spec (typed parameters checked)."""
    return [TERMS[t.name](**t.params) for t in spec.terms]


def build_adapters(spec: StepSpec) -> list[Term]:
    """The terms whose adapt_model hook adapts the grown model of a step (the head init)."""
    return [] if spec.head_init == "none" else [TERMS[spec.head_init]()]


def check_terms(run: RunConfig) -> None:
    """Build the terms a run config's parameters describe, so a bad parameter fails when the
    config is resolved. A step 0 the method shares is its owner's training: the method's own
    parameters are checked as its first incremental step uses them."""
    method = get_method(run.base_method)
    shared0 = run.step == 0 and method.shares_step0 and method.step0 != method.name
    method.build_terms(run.params, 1 if shared0 else run.step)


def step_context(spec: StepSpec, model: nn.Module, old_model: nn.Module | None,
                 device: torch.device, prev_state: dict[str, Any]) -> StepContext:
    """What the terms of a step see of it (the task, for terms that ask about classes)."""
    run = spec.run
    return StepContext(run=run, task=get_task(run.dataset, run.task), step=run.step,
                       model=model, old_model=old_model, device=device, prev_state=prev_state)


def default_spec(method: str, benchmark: str, step: int) -> StepSpec:
    """The spec of a step of a method with its methods.yaml parameters and label policy and
    the run config's defaults otherwise, on a benchmark 'dataset/task/setting' (what the
    cost model reads the paper's Table 7 rows with)."""
    dataset, task, setting = benchmark.split("/")
    m = get_method(method)
    run = RunConfig(dataset=dataset, task=task, setting=setting, method=method,
                    base_method=method, step=step, seed=0, params=m.default_params(),
                    labels=LabelsConfig(**m.labels))
    return step_spec(run)
