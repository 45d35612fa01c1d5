"""Hand-made metrics.json files in the results path scheme of DESIGN.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_metrics(
    root: Path,
    dataset: str,
    task: str,
    setting: str,
    method: str,
    step: int,
    iou: dict[int, float | None],
    seed: int = 42,
    **extra: object,
) -> Path:
    """Write results/{dataset}/{task}/{setting}/{method}/seed{seed}/step{k}/metrics.json
    (IoU as fractions)."""
    run = Path(root) / dataset / task / setting / method / f"seed{seed}"
    path = run / f"step{step}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "dataset": dataset,
        "task": task,
        "setting": setting,
        "method": method,
        "step": step,
        "seed": seed,
        "classes_seen": sorted(iou),
        "iou": {str(c): v for c, v in iou.items()},
        "background_iou": iou.get(0),
        "miou_old": None,
        "miou_new": None,
        "miou_all": None,
        "train_time_s": 60.0,
        "peak_gpu_mem_mb": None,
        "images_per_s": 10.0,
    }
    data.update(extra)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def metrics_writer():
    return write_metrics


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
