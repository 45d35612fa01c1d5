"""Metrics records the workflow derives without a model: a cell's metrics from a shared
training's confusion matrix, and the `final` flag of a finished run."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ucd.evaluation.metrics import summarize
from ucd.facts.spec import StepSpec, paper_columns

__all__ = ["cell_metrics", "final_record", "paper_columns", "write_json_atomic"]

FINAL_COLUMNS = ("miou_old", "miou_new", "miou_all", "background_iou")


def cell_metrics(shared_metrics: str | Path, spec: StepSpec) -> dict:
    """A cell's metrics.json from the shared training it reuses: the shared confusion matrix
    summarised with the cell's columns (its spec's), the cell's identity, and where it comes
    from."""
    run, path = spec.run, Path(shared_metrics)
    shared = json.loads(path.read_text())
    old, new = (list(c) for c in spec.columns)
    cm = torch.tensor(shared["confusion_matrix"], dtype=torch.int64)
    ident = {key: getattr(run, key) for key in
             ("dataset", "task", "setting", "method", "base_method", "step", "seed")}
    return {**shared, **ident, "base_classes": old, "new_classes": new,
            **summarize(cm, base_classes=old, new_classes=new),
            "shared_training": str(path.parent)}


def final_record(metrics_files: Sequence[str | Path]) -> dict:
    """The `final` flag of a run: its last step's metrics file and the paper's columns."""
    last = str(metrics_files[-1])
    metrics = json.loads(Path(last).read_text())
    return {"metrics": last, "step": metrics.get("step"),
            **{k: metrics.get(k) for k in FINAL_COLUMNS}}


def write_json_atomic(data: Any, path: str | Path) -> None:
    """Write JSON through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
