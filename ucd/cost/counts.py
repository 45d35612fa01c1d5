"""Images per training step and per validation set, each with where the number comes from:
the split file when it exists, else the data on disk, else the counts published in
``ucd/data/tasks.yaml``, else an estimate that says what it assumes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ucd.data.tasks import get_dataset_info, get_task
from ucd.facts.config import RunConfig

TASKS_YAML = "ucd/data/tasks.yaml"


@dataclass(frozen=True)
class Count:
    """A number of images and its source; ``images`` is None when nothing tells it."""

    images: int | None
    source: str
    origin: str  # split | data | published | estimate | unknown


@functools.cache
def _split_counts(path: str, mtime: float) -> tuple[int, ...]:
    from ucd.data.splits import load_split

    del mtime  # part of the cache key only: a rewritten split file is read again
    return tuple(load_split(path, verify=False)["counts"])


@functools.cache
def _listed(dataset: str, root: str, split: str) -> int | None:
    """Images the dataset's reader lists under ``root`` (None: no readable data there)."""
    from ucd.data.base import get_reader

    if not root or not Path(root).exists():
        return None
    try:
        return len(get_reader(dataset, root).samples(split))
    except (OSError, ValueError):
        return None


def set_size(dataset: str, root: str, split: str) -> Count:
    """Images of the whole training or validation set of a dataset."""
    listed = _listed(dataset, root, split)
    if listed:
        return Count(listed, f"{split} images listed under {root}", "data")
    published = get_dataset_info(dataset).images.get(split)
    if published:
        return Count(published, f"published {split} set size in {TASKS_YAML}", "published")
    return Count(None, f"no {split} set size: no data under {root!r}, none in {TASKS_YAML}",
                 "unknown")


def step_images(run: RunConfig, joint: bool) -> Count:
    """Training images of one step (Joint: the whole training set)."""
    if joint:
        return set_size(run.dataset, run.data.root, "train")
    split = Path(run.data.split) if run.data.split else None
    if split is not None and split.is_file():
        counts = _split_counts(str(split), split.stat().st_mtime)
        return Count(counts[run.step], f"split file {split}", "split")
    published = _published(run.dataset, run.task, run.setting, run.step)
    if published is not None:
        return published
    return _estimate(run)


def _published(dataset: str, task: str, setting: str, step: int) -> Count | None:
    """The published count of a step; step 0 also from the task whose step 0 is the same
    training (same step-0 classes and later classes, e.g. 15-1 and 15-5)."""
    from ucd.planning.plan import canonical_task

    names = [task] if step else list(dict.fromkeys([task, canonical_task(dataset, task)]))
    for name in names:
        counts = get_task(dataset, name).expected_counts.get(setting, ())
        if step < len(counts) and counts[step] is not None:
            same = "" if name == task else f" for {name}, whose step 0 is the same"
            return Count(counts[step], f"published in {TASKS_YAML}{same}", "published")
    return None


def _estimate(run: RunConfig) -> Count:
    """The training set times the step's share of the foreground classes (an image holds
    several classes: overlapped steps reuse images, so this can be low there)."""
    total = set_size(run.dataset, run.data.root, "train")
    info = get_dataset_info(run.dataset)
    learned = [c for c in get_task(run.dataset, run.task).steps[run.step] if c != 0]
    foreground = info.num_classes - 1
    if total.images is None:
        return Count(None, f"no count: no split file, no published count; {total.source}",
                     "unknown")
    n = total.images * len(learned) // foreground
    return Count(n, f"estimate: {total.images} {run.dataset} training images "
                    f"({total.origin}) x the classes learned at the step / {foreground}",
                 "estimate")


def new_images_per_batch(run: RunConfig) -> int:
    """Images of the step in a global batch: the whole batch, less the replayed images of a
    method that replays (RECALL: ``replay_ratio`` replayed per new image)."""
    from ucd.data.replay.mix import split_batch
    from ucd.methods import TERMS

    ratios = [p.get("replay_ratio", TERMS[t].defaults.get("replay_ratio", 0.0))
              for t, p in run.params.items() if t in TERMS and TERMS[t].replays]
    if run.step == 0 or not ratios:
        return run.optim.batch_size
    return max(split_batch(run.optim.batch_size, float(ratios[0]))[0], 1)


def iterations(run: RunConfig, images: int) -> int:
    """Optimiser steps of a training step: epochs x whole global batches of the step's images
    (the last partial batch is dropped, as the engine's sampler does)."""
    batches = images // new_images_per_batch(run)
    return run.optim.epochs_for(batches) * batches
