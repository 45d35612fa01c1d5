"""Aggregation: every per-step metrics.json under results/ -> one tidy table
(one row per run, seed and step), and the cells over seeds (mean, std, n) that tables,
figures and claims read from it."""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ucd.reporting.tables import Block, column_classes, task_steps

ID_COLUMNS = ["dataset", "task", "setting", "method", "seed", "step"]
METRIC_COLUMNS = [
    "base_method",
    "n_classes_seen",
    "background_iou",
    "miou_old",
    "miou_new",
    "miou_all",
    "train_time_s",
    "peak_gpu_mem_mb",
    "images_per_s",
    "eval_time_s",
    "unseen_as_background",  # of the pixels of classes not seen yet: called background
    "unseen_as_seen_class",  # ... called a seen class (old/new confusion)
    "batch_size",  # the global batch the step trained with (Fig. 11's x)
]
REQUIRED_KEYS = ("iou", "classes_seen")
_STEP_DIR = re.compile(r"^step([0-9]+)$")
_SEED_DIR = re.compile(r"^seed([0-9]+)$")


def _float(value: object) -> float:
    return float("nan") if value is None else float(value)


def read_metrics(path: str | Path) -> dict:
    """One metrics.json as a flat record; identity (seed included) from the path
    (.../{dataset}/{task}/{setting}/{method}/seed{seed}/step{k}/metrics.json)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {', '.join(missing)}")
    dataset, task, setting, method, seed_dir, step_dir = path.parts[-7:-1]
    seed_m, step_m = _SEED_DIR.match(seed_dir), _STEP_DIR.match(step_dir)
    if not (seed_m and step_m):
        raise ValueError(f"{path}: expected .../{{method}}/seed{{seed}}/step{{k}}/metrics.json")
    seed = int(seed_m.group(1))
    if data.get("seed") is not None and int(data["seed"]) != seed:
        raise ValueError(
            f"{path}: the file says seed {data['seed']} but lies under seed{seed}/; "
            "a copied or misplaced metrics file"
        )
    rec: dict = {
        "dataset": dataset,
        "task": task,
        "setting": setting,
        "method": method,
        "seed": seed,
        "step": int(step_m.group(1)),
        "base_method": method.split("-", 1)[0],  # variants are <method>-<name>
        "n_classes_seen": len(data["classes_seen"]),
    }
    for key in METRIC_COLUMNS[2:]:
        rec[key] = _float(data.get(key))
    rec["replay_source"] = data.get("replay_source") or math.nan  # methods that replay (RECALL)
    for cls, iou in data["iou"].items():
        rec[f"iou_{int(cls)}"] = _float(iou)
    rec["path"] = str(path)
    return rec


def _is_run(rel: Path) -> bool:
    """A run's own directory: no identity part names a shared (`_*`) training."""
    return not any(part.startswith("_") for part in rel.parts[:4])


def _warn_old_scheme(root: Path) -> None:
    """Results from before seeds had a directory of their own are left out, with a warning."""
    old = [
        p
        for p in root.glob("*/*/*/*/step*/metrics.json")
        if _is_run(p.relative_to(root)) and not _SEED_DIR.match(p.parts[-3])
    ]
    if old:
        warnings.warn(
            f"{len(old)} metrics file(s) in the path scheme without seed{{seed}}/ left out of "
            f"the summary, e.g. {old[0]} (move to .../{{method}}/seed{{seed}}/step{{k}}/ or "
            "delete)",
            stacklevel=3,
        )


def collect(results_dir: str | Path, out: str | Path | None = None) -> pd.DataFrame:
    """Tidy table, one row per (dataset, task, setting, method, seed, step) under results_dir
    (shared `_*` step-0 trainings skipped); written as CSV to `out` when given."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    paths = sorted(
        p for p in root.glob("*/*/*/*/seed*/step*/metrics.json") if _is_run(p.relative_to(root))
    )
    _warn_old_scheme(root)
    records = [read_metrics(p) for p in paths]
    iou_cols = sorted(
        {k for r in records for k in r if k.startswith("iou_")}, key=lambda k: int(k[4:])
    )
    columns = ID_COLUMNS + METRIC_COLUMNS + ["replay_source"] + iou_cols + ["path"]
    df = pd.DataFrame.from_records(records, columns=columns)
    df = df.sort_values(ID_COLUMNS, kind="stable").reset_index(drop=True)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
    return df


def read_summary(path: str | Path) -> pd.DataFrame:
    """Load a summary CSV written by collect(), keeping task names as strings."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"summary {path} does not exist (run `ucd report collect` first)")
    df = pd.read_csv(path, dtype={"dataset": str, "task": str, "setting": str, "method": str})
    missing = [c for c in ID_COLUMNS + ["n_classes_seen"] if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a summary, missing column(s) {', '.join(missing)}")
    return df.copy()  # consolidated blocks: row selections get much faster


def _runs(df: pd.DataFrame, block: Block, method: str) -> pd.DataFrame:
    sel = (
        (df["dataset"] == block.dataset)
        & (df["task"] == block.task)
        & (df["setting"] == block.setting)
        & (df["method"] == method)
    )
    return df[sel]


@dataclass(frozen=True)
class Stats:
    """A cell over seeds: mean, sample standard deviation (ddof=1; NaN below two seeds), n."""

    mean: float
    std: float
    n: int


def seed_stats(values: Iterable[float]) -> Stats:
    """Mean, sample std (ddof=1) and count of per-seed values, NaNs left out: the one place
    where tables, figures and claims reduce seeds to a number."""
    vals = np.array([float(v) for v in values], dtype=float)
    vals = vals[~np.isnan(vals)]
    n = len(vals)
    if n == 0:
        return Stats(math.nan, math.nan, 0)
    std = float(np.std(vals, ddof=1)) if n >= 2 else math.nan
    return Stats(float(np.mean(vals)), std, n)


def _seed_iou(rows: pd.DataFrame, classes: list[int]) -> pd.Series:
    """Per seed, the mean IoU (%) of `classes`; classes without IoU (no ground truth) are
    left out, seeds with no IoU at all are dropped."""
    cols = [f"iou_{c}" for c in classes if f"iou_{c}" in rows.columns]
    if not cols or rows.empty:
        return pd.Series(dtype=float)
    per_row = 100.0 * rows[cols].astype(float).mean(axis=1, skipna=True)
    return per_row.groupby(rows["seed"].fillna(-1).to_numpy()).mean().dropna()


def final_rows(df: pd.DataFrame, block: Block, method: str) -> pd.DataFrame:
    """Rows of the model after the last step (every class of the task seen), one per seed."""
    runs = _runs(df, block, method)
    n_all = len({c for s in task_steps(block.dataset, block.task) for c in s})
    return runs[runs["n_classes_seen"] == n_all]


def _seed_resources(runs: pd.DataFrame, seeds: pd.Series, key: str) -> pd.Series:
    """Per finished seed: peak memory (GB) or summed training time (minutes) of the
    incremental steps (of step 0 for a single-step run such as Joint)."""
    column = "peak_gpu_mem_mb" if key == "memory" else "train_time_s"
    inc = runs[runs["step"] >= 1] if (runs["step"] >= 1).any() else runs
    inc = inc[inc["seed"].fillna(-1).isin(seeds.fillna(-1))]
    per_seed = inc.groupby(inc["seed"].fillna(-1).to_numpy())[column]
    agg = per_seed.max() if key == "memory" else per_seed.sum(min_count=1)
    return agg.dropna() / (1024.0 if key == "memory" else 60.0)


def seed_values(
    df: pd.DataFrame, block: Block, method: str, key: str, step: int | None = None
) -> pd.Series:
    """One cell per seed (index: seed), in table units (% / GB / minutes): after the last step
    by default, after `step` when given; empty if not run."""
    runs = _runs(df, block, method)
    if step is not None:
        classes = column_classes(block.dataset, block.task, key, step=step)
        return _seed_iou(runs[runs["step"] == step], classes or [])
    final = final_rows(df, block, method)
    if final.empty:
        return pd.Series(dtype=float)
    if key in ("memory", "time"):
        return _seed_resources(runs, final["seed"], key)
    return _seed_iou(final, column_classes(block.dataset, block.task, key) or [])


def cell_stats(df: pd.DataFrame, block: Block, method: str, key: str) -> Stats:
    """One table cell over seeds (mean, std, n), model after the last step."""
    return seed_stats(seed_values(df, block, method, key))


def cell_value(df: pd.DataFrame, block: Block, method: str, key: str) -> float:
    """One table cell's mean over seeds, in table units; NaN if not run."""
    return cell_stats(df, block, method, key).mean


def step_stats(df: pd.DataFrame, block: Block, method: str, key: str) -> list[tuple[int, Stats]]:
    """(step, value over seeds, in %) after every step that was run (per-step curves, Fig. 10)."""
    steps = sorted(_runs(df, block, method)["step"].unique())
    return [(int(k), seed_stats(seed_values(df, block, method, key, step=int(k)))) for k in steps]


def step_values(df: pd.DataFrame, block: Block, method: str, key: str) -> list[tuple[int, float]]:
    """(step, mean over seeds in %) after every step that was run."""
    return [(k, st.mean) for k, st in step_stats(df, block, method, key)]
