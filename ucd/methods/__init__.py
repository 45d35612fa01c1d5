"""Method registry: ``methods.yaml`` (data) + loss-term adapters (``terms.py``)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from ucd.methods import terms as _terms  # noqa: F401  (registers the terms)
from ucd.methods.base import (
    HEAD_INITS,
    LABEL_POLICIES,
    TERMS,
    Batch,
    Method,
    StepContext,
    Term,
    register_term,
)

__all__ = [
    "TERMS",
    "Batch",
    "Method",
    "StepContext",
    "Term",
    "get_method",
    "list_methods",
    "register_term",
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
    if fields.get("init", "none") not in HEAD_INITS:
        raise ValueError(f"methods.yaml: {name}.init must be one of {sorted(HEAD_INITS)}")


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


def list_methods() -> list[str]:
    """Names of every method, in methods.yaml order."""
    return list(_load())


def get_method(name: str) -> Method:
    """The method called ``name``; a ValueError lists the valid names."""
    methods = _load()
    if name not in methods:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(methods)}")
    return methods[name]
