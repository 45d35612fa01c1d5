"""Figures measured by the user: the step-times file ``benchmarks/gpu_step.py`` writes, and
the metrics.json of finished runs (training and evaluation time)."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ucd.cost.rates import Figure, Shape, eval_shape, shape_of
from ucd.facts.config import ConfigError, RunConfig
from ucd.methods import step_spec

FORMAT = "ucd-step-times/1"
ENTRY_KEYS = {"kind": str, "model": str, "crop": int, "images_per_gpu": int, "gpus": int,
              "s_per_iter": float, "device": str}
log = logging.getLogger(__name__)


def _check_entry(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a mapping, got {entry!r}")
    for key, kind in ENTRY_KEYS.items():
        value = entry.get(key)
        ok = isinstance(value, int | float) if kind is float else isinstance(value, kind)
        if not ok or isinstance(value, bool):
            raise ValueError(f"{where}.{key} must be a {kind.__name__}, got {value!r}")
    if entry["s_per_iter"] <= 0 or entry["crop"] < 1 or entry["images_per_gpu"] < 1:
        raise ValueError(f"{where}: s_per_iter, crop and images_per_gpu must be > 0")


def read_times(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a step-times file, checked (a bad file is an error naming it)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"step-times file {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"step-times file {path} is not a {FORMAT} file (written by "
                         "benchmarks/gpu_step.py --times)")
    entries = data.get("entries")
    if not isinstance(entries, list):
        raise ValueError(f"step-times file {path}: 'entries' must be a list")
    for i, entry in enumerate(entries):
        _check_entry(entry, f"{path}: entries[{i}]")
    return entries


def load_times(path: str | Path) -> list[Figure]:
    """The figures of a step-times file."""
    out = []
    for e in read_times(path):
        micro = int(e.get("micro_batch") or e["images_per_gpu"])
        shape = Shape(e["kind"], e["model"], e["crop"], e["images_per_gpu"], micro, e["gpus"])
        mem = e.get("peak_gpu_mem_mb")
        out.append(Figure(shape, float(e["s_per_iter"]), None if mem is None else mem / 1024,
                          f"measured on {e['device']} ({path})"))
    return out


def _key(entry: dict[str, Any]) -> tuple:
    return tuple(entry[k] for k in ("kind", "model", "crop", "images_per_gpu", "gpus", "device"))


def merge_times(path: str | Path, entries: Iterable[dict[str, Any]]) -> None:
    """Add entries to a step-times file (an entry of the same shape and device is replaced),
    written through a temporary file and a rename."""
    path = Path(path)
    new = list(entries)
    for i, entry in enumerate(new):
        _check_entry(entry, f"new entry {i}")
    keys = {_key(e) for e in new}
    old = [e for e in read_times(path) if _key(e) not in keys] if path.exists() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump({"format": FORMAT, "entries": old + new}, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def _iterations(metrics: dict[str, Any], run: RunConfig) -> float | None:
    if metrics.get("iterations"):
        return float(metrics["iterations"])
    rate = metrics.get("images_per_s")
    if rate and math.isfinite(rate):  # older files: images seen / global batch
        return metrics["train_time_s"] * rate / run.optim.batch_size
    return None


def finished_runs(results: str | Path, train_gpus: int,
                  eval_gpus: int) -> tuple[list[Figure], list[Figure]]:
    """Training (s/iteration) and evaluation (s/image) figures of the finished runs under
    ``results``: every metrics.json next to a run.yaml. The GPU counts are the config's (a
    metrics file does not record them)."""
    train, evals = [], []
    for metrics_file in sorted(Path(results).glob("**/step*/metrics.json")):
        run_file = metrics_file.with_name("run.yaml")
        if not run_file.is_file():
            continue
        try:
            metrics = json.loads(metrics_file.read_text())
            run = RunConfig.from_dict(yaml.safe_load(run_file.read_text()), where=str(run_file))
            spec = step_spec(run)
        except (ValueError, ConfigError, OSError) as err:
            log.warning("skipped %s: %s", metrics_file, err)
            continue
        where = f"finished runs under {results} (metrics.json)"
        iters = _iterations(metrics, run) if metrics.get("train_time_s") else None
        if iters:
            mem = metrics.get("peak_gpu_mem_mb")
            shape = shape_of(spec, train_gpus)
            train.append(Figure(shape, metrics["train_time_s"] / iters,
                                None if mem is None else mem / 1024, where))
        if metrics.get("eval_time_s") and metrics.get("n_val_images"):
            evals.append(Figure(eval_shape(run, eval_gpus),
                                metrics["eval_time_s"] / metrics["n_val_images"], None, where))
    return train, evals
