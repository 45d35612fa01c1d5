"""Aggregation: every per-step metrics.json under results/ -> one tidy table
(one row per run and step), and the table/figure cell values computed from it."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from ucd.reporting.tables import Block, column_classes, task_steps

ID_COLUMNS = ["dataset", "task", "setting", "method", "step", "seed"]
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
]
REQUIRED_KEYS = ("iou", "classes_seen")
_STEP_DIR = re.compile(r"^step([0-9]+)$")


def _float(value: object) -> float:
    return float("nan") if value is None else float(value)


def read_metrics(path: str | Path) -> dict:
    """One metrics.json as a flat record; identity from the path (results scheme)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {', '.join(missing)}")
    dataset, task, setting, method, step_dir = path.parts[-6:-1]
    m = _STEP_DIR.match(step_dir)
    if not m:
        raise ValueError(f"{path}: expected .../{{method}}/step{{k}}/metrics.json")
    rec: dict = {
        "dataset": dataset,
        "task": task,
        "setting": setting,
        "method": method,
        "step": int(m.group(1)),
        "seed": data.get("seed"),
        "base_method": method.split("-", 1)[0],  # variants are <method>-<name>
        "n_classes_seen": len(data["classes_seen"]),
    }
    for key in METRIC_COLUMNS[2:]:
        rec[key] = _float(data.get(key))
    for cls, iou in data["iou"].items():
        rec[f"iou_{int(cls)}"] = _float(iou)
    rec["path"] = str(path)
    return rec


def collect(results_dir: str | Path, out: str | Path | None = None) -> pd.DataFrame:
    """Tidy table of every run and step under results_dir (shared `_*` step-0 dirs skipped);
    written as CSV to `out` when given."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    paths = sorted(
        p for p in root.glob("*/*/*/*/step*/metrics.json") if not p.parts[-3].startswith("_")
    )
    records = [read_metrics(p) for p in paths]
    iou_cols = sorted(
        {k for r in records for k in r if k.startswith("iou_")}, key=lambda k: int(k[4:])
    )
    columns = ID_COLUMNS + METRIC_COLUMNS + iou_cols + ["path"]
    df = pd.DataFrame.from_records(records, columns=columns)
    df = df.sort_values(ID_COLUMNS[:5], kind="stable").reset_index(drop=True)
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


def _mean_iou(rows: pd.DataFrame, classes: list[int]) -> float:
    """Mean over seeds of the mean IoU of `classes` (classes without IoU left out)."""
    cols = [f"iou_{c}" for c in classes if f"iou_{c}" in rows.columns]
    if not cols or rows.empty:
        return math.nan
    per_seed = rows[cols].astype(float).mean(axis=1, skipna=True).dropna()
    return float(per_seed.mean()) if len(per_seed) else math.nan


def final_rows(df: pd.DataFrame, block: Block, method: str) -> pd.DataFrame:
    """Rows of the model after the last step (every class of the task seen), one per seed."""
    runs = _runs(df, block, method)
    n_all = len({c for s in task_steps(block.dataset, block.task) for c in s})
    return runs[runs["n_classes_seen"] == n_all]


def cell_value(df: pd.DataFrame, block: Block, method: str, key: str) -> float:
    """One table cell from the summary, in table units (% / GB / minutes); NaN if not run."""
    runs = _runs(df, block, method)
    final = final_rows(df, block, method)
    if final.empty:
        return math.nan
    if key in ("memory", "time"):
        column = "peak_gpu_mem_mb" if key == "memory" else "train_time_s"
        inc = runs[runs["step"] >= 1] if (runs["step"] >= 1).any() else runs
        per_seed = inc.groupby(inc["seed"].fillna(-1))[column]
        agg = per_seed.max() if key == "memory" else per_seed.sum(min_count=1)
        value = float(agg.mean())
        return value / 1024.0 if key == "memory" else value / 60.0
    classes = column_classes(block.dataset, block.task, key)
    return 100.0 * _mean_iou(final, classes or [])


def step_values(df: pd.DataFrame, block: Block, method: str, key: str) -> list[tuple[int, float]]:
    """(step, value in %) after every step that was run, for per-step curves (Fig. 10)."""
    runs = _runs(df, block, method)
    out = []
    for step in sorted(runs["step"].unique()):
        rows = runs[runs["step"] == step]
        classes = column_classes(block.dataset, block.task, key, step=int(step))
        out.append((int(step), 100.0 * _mean_iou(rows, classes or [])))
    return out
