"""Resolve one training step's :class:`~ucd.facts.config.RunConfig` from the workflow config.

A value comes from one of four layers, later wins (``python -m ucd config ... --explain``
prints each value with its layer's number and the place in the config that set it):

1. **built-in**: what the code and the method define, no workflow config needed: the section
   defaults of :mod:`ucd.facts.config`, the protocol's ``incremental`` rate
   (``BUILTIN_INCREMENTAL``: lr 1e-3 after step 0, paper 4.2), the method's entry in
   ``ucd/methods/methods.yaml`` (its terms' parameters over ``Term.defaults``, its label policy;
   ``base:`` resolved there) and the results path scheme's files (``data.split``, ``data.replay``,
   when no layer sets them);
2. **dataset**: ``datasets.<dataset>`` (its ``root`` is the run's ``data.root``);
3. **overrides**: ``method_params.<method>`` (shorthand for an override matching that method),
   then every ``overrides`` entry whose ``match`` fits the run, in file order;
4. **variant**: the ``variants.<name>`` entry when the run's method is a named variant.

The workflow config these layers come from is one mapping: Snakemake merges ``config.yaml``,
``--configfile`` files and ``--config`` values into it before ``ucd`` reads it (``ucd config``
merges its files the same way). No environment variable changes a run.

A layer holds sections (model, optim, data, train, eval, labels), ``params`` (term parameters)
and ``incremental:``. ``incremental.<section>.<key>`` is a key of its own, resolved through
the same four layers, that holds the value for steps >= 1: where any layer sets it, it is the
value of ``<section>.<key>`` at steps >= 1, otherwise the plain key's is (so ``optim.lr`` is
step 0's rate, and steps >= 1 take the protocol's 1e-3 unless a layer sets
``incremental.optim.lr``).

Matching a method (``method_params.m``, ``overrides`` with ``match: {method: m}``) also matches
m's named variants (``variants.<name>.method: m``), never methods derived from m with ``base:``
in methods.yaml (``mib_ucd`` is not ``mib``): list both to change both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ucd.facts.config import SECTIONS, ConfigError, RunConfig, build_section, closest

BUILTIN_INCREMENTAL: dict[str, Any] = {"optim": {"lr": 0.001}}  # paper 4.2: VOC, Cityscapes
MATCH_KEYS = ("dataset", "task", "setting", "method")
FRAGMENT_KEYS = (*SECTIONS, "params", "incremental")
DATASET_KEYS = (*SECTIONS, "incremental")  # datasets.<d> also holds root and generate


LAYERS = ("built-in", "dataset", "overrides", "variant")  # precedence order, later wins


@dataclass(frozen=True)
class Layer:
    """One place of the config that contributes to a layer: the layer's number (1-4, see
    ``LAYERS``), the place's name (for messages) and its values."""

    rank: int
    name: str
    values: Mapping[str, Any]

    @property
    def label(self) -> str:
        """How --explain names it: the layer's number, then the place."""
        return layer_label(self.rank, self.name)


def layer_label(rank: int, name: str) -> str:
    """'<layer number> <place>', e.g. '2 datasets.digits' (see ``LAYERS``)."""
    if not 1 <= rank <= len(LAYERS):
        raise ValueError(f"layer {rank} does not exist: the layers are 1-{len(LAYERS)}, "
                         f"{', '.join(LAYERS)}")
    return f"{rank} {name}"


def _method_terms(base: str) -> dict[str, dict[str, Any]]:
    from ucd.methods import get_method

    return get_method(base).default_params()


def check_sections(values: Mapping[str, Any], where: str, *, allowed: tuple = FRAGMENT_KEYS,
                   nested: bool = True) -> None:
    """Refuse unknown keys and bad values in a layer (sections, and ``incremental:``)."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {values!r}")
    for key, value in values.items():
        if key not in allowed:
            raise ConfigError(f"{where} has no key {key!r}{closest(str(key), list(allowed))}; "
                              f"valid keys: {', '.join(allowed)}")
        if key in SECTIONS:
            section = build_section(SECTIONS[key], value or {}, f"{where}.{key}")
            del section  # built only to check keys and values
        elif key == "incremental" and nested:
            check_sections(value or {}, f"{where}.incremental", allowed=tuple(SECTIONS),
                           nested=False)


def check_params(params: Any, base: str, where: str) -> None:
    """Every term must be one of the method's and every parameter one of the term's."""
    from ucd.methods import TERMS

    if params is None:
        return
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where} must map term names to parameters, got {params!r}")
    terms = _method_terms(base)
    for term, values in params.items():
        if term not in terms:
            raise ConfigError(
                f"{where}: method {base!r} has no term {term!r}{closest(str(term), list(terms))}"
                f"; its terms: {', '.join(terms)}"
            )
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where}.{term} must be a mapping of parameters, got {values!r}")
        valid = list(TERMS[term].defaults)
        for name in values:
            if name not in valid:
                raise ConfigError(
                    f"{where}.{term}: term {term!r} has no parameter {name!r}"
                    f"{closest(str(name), valid)}; its parameters: {', '.join(valid)}"
                )


def method_of(config: Mapping[str, Any], name: str) -> tuple[str, Mapping[str, Any]]:
    """(methods.yaml entry, variant layer values) of a path name: a method or a variant."""
    from ucd.methods import list_methods

    variants = config.get("variants") or {}
    if name in variants:
        variant = variants[name] or {}
        base = variant.get("method")
        if base not in list_methods():
            raise ConfigError(f"variants.{name}.method is {base!r}; valid methods: "
                              f"{', '.join(list_methods())}")
        return base, {k: v for k, v in variant.items() if k != "method"}
    if name not in list_methods():
        raise ConfigError(
            f"unknown method {name!r}{closest(name, [*list_methods(), *variants])}; valid "
            f"methods: {', '.join(list_methods())}"
            + (f"; variants: {', '.join(variants)}" if variants else "")
        )
    return name, {}


def _matches(match: Mapping[str, Any], here: Mapping[str, str], base: str) -> bool:
    for key, want in match.items():
        wanted = want if isinstance(want, list) else [want]
        if key == "method":
            if here["method"] not in wanted and base not in wanted:
                return False
        elif here[key] not in wanted:
            return False
    return True


def layers(config: Mapping[str, Any], *, dataset: str, task: str, setting: str,
           method: str) -> list[Layer]:
    """Every layer that applies to a run, in precedence order (later wins)."""
    from ucd.methods import get_method

    base, variant = method_of(config, method)
    datasets = config.get("datasets") or {}
    if dataset not in datasets:
        raise ConfigError(f"datasets.{dataset} is not configured; configured: "
                          f"{', '.join(datasets) or 'none'}")
    m = get_method(base)
    out = [
        Layer(1, "built-in", {"incremental": BUILTIN_INCREMENTAL}),
        Layer(1, f"methods.yaml:{base}", {"params": m.default_params(), "labels": m.labels}),
        Layer(2, f"datasets.{dataset}",
              {k: v for k, v in (datasets[dataset] or {}).items() if k in DATASET_KEYS}),
    ]
    shorthand = (config.get("method_params") or {}).get(base)
    if shorthand is not None:
        out.append(Layer(3, f"method_params.{base}", {"params": shorthand}))
    here = {"dataset": dataset, "task": task, "setting": setting, "method": method}
    for i, entry in enumerate(config.get("overrides") or []):
        if _matches(entry.get("match") or {}, here, base):
            out.append(Layer(3, f"overrides[{i}]",
                             {k: v for k, v in entry.items() if k != "match"}))
    if variant:
        out.append(Layer(4, f"variants.{method}", variant))
    for layer in out:
        if layer.rank == 2:
            check_sections(layer.values, layer.name, allowed=DATASET_KEYS)
        elif layer.rank > 2:
            check_sections(layer.values, layer.name)
            check_params(layer.values.get("params"), base, f"{layer.name}.params")
    return out


def _flatten(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys of the leaves (a list is a leaf), params three levels deep."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, path + ".")
        elif not isinstance(value, Mapping):
            yield path, value


def _section_defaults() -> dict[str, Any]:
    return {f"{name}.{f.name}": f.default for name, cls in SECTIONS.items() for f in fields(cls)}


def explain(config: Mapping[str, Any], *, dataset: str, task: str, setting: str, method: str,
            step: int, seed: int) -> dict[str, tuple[Any, str]]:
    """Every resolved value (dotted key) with the layer that set it: '<layer number> <place>'
    (see ``LAYERS``); the identity of the run is labelled 'run'."""
    from ucd.data.tasks import get_task

    t = get_task(dataset, task)
    if not 0 <= step < t.n_steps:
        raise ConfigError(f"step {step} out of range for {dataset} {task} (0..{t.n_steps - 1})")
    found = layers(config, dataset=dataset, task=task, setting=setting, method=method)
    resolved = {k: (v, layer_label(1, "built-in")) for k, v in _section_defaults().items()}
    passes = [(layer.label, {k: v for k, v in layer.values.items() if k != "incremental"})
              for layer in found]
    if step > 0:  # the incremental keys, where any layer sets them, beat the plain ones
        passes += [(f"{layer.label}.incremental", layer.values.get("incremental") or {})
                   for layer in found]
    for name, values in passes:
        resolved.update((k, (v, name)) for k, v in _flatten(values))
    ds = config["datasets"][dataset]
    resolved["data.root"] = (str(ds.get("root", Path("results/data") / dataset)),
                             layer_label(2, f"datasets.{dataset}.root"))
    if resolved["data.split"][0] is None:
        results = config.get("results", "results")
        split = Path(results) / "splits" / dataset / task / f"{setting}.json"
        resolved["data.split"] = (str(split), layer_label(1, "results path scheme"))
    base, _ = method_of(config, method)
    replay = replay_dir(config, base, dataset, task, setting, step, resolved)
    if resolved["data.replay"][0] is None and replay is not None:
        resolved["data.replay"] = (replay, layer_label(1, "results path scheme"))
    identity = {"dataset": dataset, "task": task, "setting": setting, "method": method,
                "base_method": base, "step": step, "seed": seed}
    return {**{k: (v, "run") for k, v in identity.items()}, **resolved}


def derived(config: Mapping[str, Any],
            values: Mapping[str, tuple[Any, str]]) -> dict[str, tuple[Any, str]]:
    """What follows from resolved values (``--explain`` prints it after them): the images per
    device, the global batch over ``train.devices`` (None: the GPUs of a training job,
    ``resources.train.gpus``)."""
    batch, batch_layer = values["optim.batch_size"]
    devices, devices_layer = values["train.devices"]
    if devices is None:
        gpus = ((config.get("resources") or {}).get("train") or {}).get("gpus")
        devices, devices_layer = max(int(gpus or 1), 1), "resources.train.gpus"
    return {"batch per device": (batch / devices if batch % devices else batch // devices,
                                 f"optim.batch_size / {devices} devices ({batch_layer}; "
                                 f"{devices_layer})")}


def replay_dir(config: Mapping[str, Any], base: str, dataset: str, task: str, setting: str,
               step: int, resolved: Mapping[str, tuple[Any, str]]) -> str | None:
    """RESULTS/replay/{dataset}/{task}/{setting}/step{k}/n{images per class}: the replay set
    of a step >= 1 of a method that replays (None otherwise); methods asking the same number
    of images share it."""
    from ucd.methods import TERMS, get_method

    terms = [t for t in get_method(base).terms if TERMS[t].replays]
    if step == 0 or not terms:
        return None
    n = resolved.get(f"params.{terms[0]}.images_per_class", (None, ""))[0]
    results = Path(config.get("results", "results"))
    return str(results / "replay" / dataset / task / setting / f"step{step}" / f"n{n}")


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def resolve(config: Mapping[str, Any], *, dataset: str, task: str, setting: str, method: str,
            step: int, seed: int) -> RunConfig:
    """The run config of one step (see the module doc for the layers), validated, with its
    term parameters checked by building the terms."""
    from ucd.methods import check_terms

    flat = explain(config, dataset=dataset, task=task, setting=setting, method=method,
                   step=step, seed=seed)
    where = f"{dataset}/{task}/{setting}/{method} step {step}"
    run = RunConfig.from_dict(_unflatten({k: v for k, (v, _) in flat.items()}), where=where)
    try:  # term parameters are checked when the config is resolved, not hours later
        check_terms(run)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from err
    check_packaged_weights(run, where)
    return run


def check_packaged_weights(run: RunConfig, where: str) -> None:
    """Packaged pretrained weights fit one backbone (their recipe); a model that differs
    would fail at load time inside the job, so it is refused with the config."""
    from ucd.models.deeplab import packaged_weights

    recipe = packaged_weights().get(str(run.model.pretrained), {}).get("recipe")
    for key in ("backbone", "width", "output_stride"):
        if recipe and recipe.get(key) != getattr(run.model, key):
            raise ConfigError(
                f"{where}: model.pretrained {run.model.pretrained!r} is a {key} "
                f"{recipe.get(key)} backbone, the model's {key} is {getattr(run.model, key)}; "
                "set model.pretrained: null or to weights of this backbone")


def _check_match(match: Any, where: str, config: Mapping[str, Any]) -> list[str]:
    """Check an override's ``match``; return the base methods it names (empty: any)."""
    from ucd.data.tasks import SETTINGS

    if not isinstance(match, Mapping) or not match:
        raise ConfigError(f"{where}.match must be a non-empty mapping of {', '.join(MATCH_KEYS)}")
    for key, want in match.items():
        if key not in MATCH_KEYS:
            raise ConfigError(f"{where}.match has no key {key!r}{closest(str(key), MATCH_KEYS)}; "
                              f"valid keys: {', '.join(MATCH_KEYS)}")
        for value in want if isinstance(want, list) else [want]:
            valid = {"dataset": list(config.get("datasets") or {}), "setting": list(SETTINGS)}
            if key in valid and value not in valid[key]:
                raise ConfigError(f"{where}.match.{key}: {value!r} is not one of "
                                  f"{', '.join(valid[key])}")
    methods = match.get("method", [])
    return [method_of(config, m)[0] for m in (methods if isinstance(methods, list) else [methods])]


def check_static(config: Mapping[str, Any]) -> None:
    """Check every layer of the workflow config, used by a run or not: sections, term names
    and parameters (against the methods they apply to), override matches, variants."""
    from ucd.methods import list_methods

    for name, ds in (config.get("datasets") or {}).items():
        check_sections({k: v for k, v in (ds or {}).items() if k not in ("root", "generate")},
                       f"datasets.{name}", allowed=DATASET_KEYS)
    for name, params in (config.get("method_params") or {}).items():
        if name not in list_methods():
            raise ConfigError(f"method_params.{name}: unknown method{closest(name, list_methods())}"
                              f"; valid methods: {', '.join(list_methods())}")
        check_params(params, name, f"method_params.{name}")
    for i, entry in enumerate(config.get("overrides") or []):
        where = f"overrides[{i}]"
        bases = _check_match(entry.get("match"), where, config)
        values = {k: v for k, v in entry.items() if k != "match"}
        check_sections(values, where)
        for base in bases:  # without a method, params are checked run by run
            check_params(values.get("params"), base, f"{where}.params")
    for name in config.get("variants") or {}:
        base, values = method_of(config, name)
        check_sections(values, f"variants.{name}")
        check_params(values.get("params"), base, f"variants.{name}.params")
