"""What a dataset's training images hold, in the terms that make incremental steps hard.

Two properties decide whether a class-incremental benchmark tests the background shift that
the paper's methods are built for: how many classes an image shows (VOC images often show
several), and how often an image of step k also shows a class learned before step k (those
pixels are labelled background at step k: what the old model knows, the step's labels deny).
``ucd data stats DATASET --root R`` prints them for any dataset with a reader; the digits
generator writes them to ``stats.json`` beside its images.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import numpy as np

from ucd.data.base import get_reader
from ucd.data.splits import select_images
from ucd.data.tasks import Task, get_dataset_info, list_tasks

IGNORE = 255


def class_pixels(label: np.ndarray, num_classes: int) -> dict[int, int]:
    """Pixels of each class (0 and 255 left out) present in one label map."""
    counts = np.bincount(label.ravel(), minlength=256)
    return {c: int(counts[c]) for c in range(1, num_classes) if counts[c]}


def classes_per_image(pixels: dict[str, dict[int, int]]) -> dict[str, Any]:
    """Share of images showing 0, 1, 2, ... object classes, and of those showing 2 or more."""
    n = max(len(pixels), 1)
    hist = Counter(len(p) for p in pixels.values())
    return {
        "images": len(pixels),
        "classes_per_image": {str(k): round(hist[k] / n, 4) for k in sorted(hist)},
        "share_2plus_classes": round(sum(v for k, v in hist.items() if k >= 2) / n, 4),
        "mean_classes": round(sum(k * v for k, v in hist.items()) / n, 3),
    }


def step_stats(pixels: dict[str, dict[int, int]], task: Task, setting: str,
               image_pixels: int | dict[str, int]) -> list[dict[str, Any]]:
    """Per step k >= 1 of a task: its training images, the share of them that show a class
    learned before step k, and the share of their pixels that such classes cover."""
    ids = select_images({i: sorted(p) for i, p in pixels.items()}, task, setting)
    out = []
    for k in range(1, task.n_steps):
        old = set(task.classes_seen(k - 1)) - {0}
        chosen = ids[k]
        with_old = [i for i in chosen if old & set(pixels[i])]
        old_px = sum(n for i in chosen for c, n in pixels[i].items() if c in old)
        total = sum(image_pixels if isinstance(image_pixels, int) else image_pixels[i]
                    for i in chosen)
        out.append({
            "step": k,
            "images": len(chosen),
            "share_with_old_class": round(len(with_old) / max(len(chosen), 1), 4),
            "old_pixel_share": round(old_px / max(total, 1), 4),
        })
    return out


def dataset_stats(dataset: str, root: str | os.PathLike, *, split: str = "train",
                  tasks: list[str] | None = None) -> dict[str, Any]:
    """Classes per image, and per task and setting the steps' share of images showing an old
    class, over the training images of a dataset's reader."""
    info = get_dataset_info(dataset)
    reader = get_reader(dataset, root)
    pixels: dict[str, dict[int, int]] = {}
    sizes: dict[str, int] = {}
    for s in reader.samples(split):
        label = reader.read_label(s.label)
        pixels[s.id] = class_pixels(label, info.num_classes)
        sizes[s.id] = int(label.size)
    chosen = [t for t in list_tasks(dataset) if tasks is None or t.name in tasks]
    return {
        "dataset": dataset,
        "split": split,
        **classes_per_image(pixels),
        "tasks": {t.name: {st: step_stats(pixels, t, st, sizes) for st in info.settings}
                  for t in chosen},
    }
