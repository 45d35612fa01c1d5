"""Run configuration: defaults, merging of the workflow config, validation, step-0 sharing.

A *run config* (RUN.yaml, see DESIGN.md) is everything one training step needs. It is resolved
once from the workflow config by :func:`run_config` and carried inside the checkpoint.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

# The paper's protocol (protocol.md, "Training protocol"); dataset sections override it.
DEFAULTS: dict[str, Any] = {
    "seed": 42,
    "model": {
        "backbone": "resnet101",
        "output_stride": 16,
        "width": 64,
        "head_channels": 256,
        "norm": "auto",
        "pretrained": None,
    },
    "optim": {
        "lr": 0.01,  # step 0
        "lr_next": 0.001,  # steps >= 1
        # "epochs_next": epochs of steps >= 1 when they differ from step 0's (default: equal)
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 1.0e-4,
        "poly_power": 0.9,
        "epochs": 30,
        "batch_size": 24,
    },
    "data": {"crop_size": 512, "num_workers": 4},
    "train": {"log_every": 10, "device": "auto"},
}

SECTIONS = ("model", "optim", "data", "train")
# Keys whose change changes what step 0 trains (the step-0 sharing key is built from them).
STEP0_SECTIONS = ("model", "optim", "data")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the valid values."""


def deep_merge(base: dict, override: dict | None) -> dict:
    """Merge ``override`` into a copy of ``base`` recursively (dicts merge, values replace)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_method_name(config: dict, name: str) -> tuple[str, dict]:
    """Map a path name (a method or a ``variants:`` entry) to (base method, variant overrides)."""
    from ucd.methods import list_methods

    variants = config.get("variants") or {}
    if name in variants:
        variant = variants[name] or {}
        base = variant.get("method")
        if base not in list_methods():
            raise ConfigError(
                f"variants.{name}.method is {base!r}; valid methods: {', '.join(list_methods())}"
            )
        return base, {k: v for k, v in variant.items() if k != "method"}
    if name not in list_methods():
        raise ConfigError(
            f"unknown method {name!r}; valid methods: {', '.join(list_methods())}"
            + (f"; variants: {', '.join(variants)}" if variants else "")
        )
    return name, {}


def _matching_overrides(config: dict, dataset: str, task: str, setting: str, method: str):
    for i, entry in enumerate(config.get("overrides") or []):
        match = entry.get("match") or {}
        unknown = set(match) - {"dataset", "task", "setting", "method"}
        if unknown:
            raise ConfigError(f"overrides[{i}].match has unknown keys {sorted(unknown)}")
        here = {"dataset": dataset, "task": task, "setting": setting, "method": method}
        if all(here[k] in (v if isinstance(v, list) else [v]) for k, v in match.items()):
            yield {k: v for k, v in entry.items() if k != "match"}


def run_config(
    config: dict, *, dataset: str, task: str, setting: str, method: str, step: int
) -> dict[str, Any]:
    """Resolve the configuration of one training step from the workflow config.

    Precedence (later wins): DEFAULTS, ``defaults``, ``datasets.<d>``, the method's own parameter
    defaults, ``method_params.<base>``, matching ``overrides``, the ``variants.<name>`` entry.
    """
    from ucd.data.tasks import get_task
    from ucd.methods import get_method

    base, variant = resolve_method_name(config, method)
    task_obj = get_task(dataset, task)
    if not 0 <= step < task_obj.n_steps:
        raise ConfigError(
            f"step {step} out of range for {dataset} {task} (0..{task_obj.n_steps - 1})"
        )
    datasets = config.get("datasets") or {}
    if dataset not in datasets:
        raise ConfigError(f"datasets.{dataset} is not configured; configured: {sorted(datasets)}")
    ds = datasets[dataset] or {}
    run: dict[str, Any] = deep_merge(DEFAULTS, config.get("defaults"))
    run = deep_merge(run, {k: ds[k] for k in SECTIONS if k in ds})
    if "seed" in ds:
        run["seed"] = ds["seed"]
    params = get_method(base).default_params()
    params = deep_merge(params, (config.get("method_params") or {}).get(base))
    layers = list(_matching_overrides(config, dataset, task, setting, method)) + [variant]
    for layer in layers:
        run = deep_merge(run, {k: layer[k] for k in (*SECTIONS, "seed") if k in layer})
        params = deep_merge(params, layer.get("params"))
    run["data"]["root"] = str(ds.get("root", Path("results/data") / dataset))
    run["data"].setdefault(
        "split",
        str(Path(config.get("results", "results")) / "splits" / dataset / task / f"{setting}.json"),
    )
    run.update(
        dataset=dataset,
        task=task,
        setting=setting,
        method=method,
        base_method=base,
        step=step,
        params=params,
    )
    optim = run["optim"]
    if step > 0:  # the paper lowers the learning rate after step 0 (protocol.md)
        optim["lr"] = optim.get("lr_next", optim["lr"])
        optim["epochs"] = optim.get("epochs_next", optim["epochs"])
    validate_run_config(run)
    try:  # term parameters are checked when the config is resolved, not hours later
        get_method(base).build_terms(params, step)
    except ValueError as err:
        raise ConfigError(f"{dataset}/{task}/{setting}/{method} step {step}: {err}") from err
    return run


def validate_run_config(run: dict) -> None:
    """Check the values a training step relies on; raise ConfigError naming the key."""
    optim = run["optim"]
    for key in ("lr", "weight_decay", "momentum"):
        if not isinstance(optim.get(key), int | float) or optim[key] < 0:
            raise ConfigError(f"optim.{key} must be a non-negative number, got {optim.get(key)!r}")
    if optim["lr"] <= 0:
        raise ConfigError(f"optim.lr must be positive, got {optim['lr']!r}")
    for key in ("epochs", "batch_size"):
        if not isinstance(optim.get(key), int) or optim[key] < 1:
            raise ConfigError(f"optim.{key} must be a positive integer, got {optim.get(key)!r}")
    if not isinstance(run["data"].get("crop_size"), int) or run["data"]["crop_size"] < 16:
        raise ConfigError(
            f"data.crop_size must be an integer >= 16, got {run['data'].get('crop_size')!r}"
        )
    if run["setting"] not in ("disjoint", "overlapped"):
        raise ConfigError(f"setting must be 'disjoint' or 'overlapped', got {run['setting']!r}")


def config_hash(run: dict) -> str:
    """A stable short hash of a run config (or any JSON-able dict)."""
    blob = json.dumps(run, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def step0_signature(run0: dict) -> dict:
    """What determines a step-0 training: data, task, setting, seed, model and optimiser."""
    keys = ("dataset", "task", "setting", "seed")
    sig = {**{k: run0[k] for k in keys}, **{s: dict(run0[s]) for s in STEP0_SECTIONS}}
    for key in ("lr_next", "epochs_next"):  # only used by later steps
        sig["optim"].pop(key, None)
    return sig


def step0_group(config: dict, dataset: str, task: str, setting: str, method: str) -> str | None:
    """Name of the shared step-0 training this method reuses, or None if it trains its own.

    Every method whose step 0 is plain cross-entropy training (``step0: shared`` in
    methods.yaml) shares it; runs whose step-0-relevant settings (model, optimiser, data, seed)
    differ from the plain ones get a group of their own, named by a hash of those settings.
    """
    from ucd.methods import get_method

    base, _ = resolve_method_name(config, method)
    if get_method(base).step0 != "shared":
        return None
    mine = step0_signature(
        run_config(config, dataset=dataset, task=task, setting=setting, method=method, step=0)
    )
    plain = step0_signature(
        run_config(config, dataset=dataset, task=task, setting=setting, method="ft", step=0)
    )
    return "base" if mine == plain else f"ft-{config_hash(mine)[:8]}"


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file with a clear error when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err


def write_yaml_atomic(data: Any, path: str | Path) -> None:
    """Write YAML through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)
