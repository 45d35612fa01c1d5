"""Replay sets: the images of the old classes replayed at one step, built once from a source
and shared by every method that replays there (the workflow's ``replay_set`` rule).

A set is a directory holding ``images/`` (images a source returned; a folder source's files are
referenced where they are) and ``index.json`` (written last): dataset, task, step, images per
class, the source, and per old class its name and image paths. ``ReplayDataset`` reads a set
as training samples whose labels mark every pixel "replayed, drawn for class c"
(``ucd.data.replay.codes.replay_code``): the labels themselves are made at training time by each
method's old model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ucd.data.base import InputDataError
from ucd.data.replay.codes import replay_code
from ucd.data.replay.sources import ReplaySource
from ucd.data.tasks import get_dataset_info, get_task
from ucd.data.transforms import TrainTransform

INDEX = "index.json"
FORMAT = "ucd-replay/1"


def old_classes(dataset: str, task: str, step: int) -> list[int]:
    """The classes replayed at ``step``: every class learned before it, background excepted."""
    t = get_task(dataset, task)
    if not 1 <= step < t.n_steps:
        raise ValueError(f"replay is for steps 1..{t.n_steps - 1} of {dataset} {t.name}, "
                         f"not step {step}")
    return [c for c in t.classes_seen(step - 1) if c != 0]


def _store(picture: Any, folder: Path, name: str) -> str:
    if isinstance(picture, Path):
        return str(picture)
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture, "RGB")
    path = folder / f"{name}.png"
    image.save(path)
    return str(Path("images") / path.name)


def build_replay_set(dataset: str, task: str, step: int, out: str | Path, source: ReplaySource,
                     *, per_class: int, seed: int = 0) -> dict[str, Any]:
    """Write the replay set of ``step`` (every old class, ``per_class`` images each) to ``out``;
    return its index."""
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"images per class must be an integer >= 1, got {per_class!r}")
    names = get_dataset_info(dataset).class_names
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    classes = {}
    for c in old_classes(dataset, task, step):
        pictures = source.images(c, names[c], per_class, seed)
        files = [_store(p, out / "images", f"{c:03d}_{i:05d}") for i, p in enumerate(pictures)]
        classes[str(c)] = {"name": names[c], "images": files}
    index = {"format": FORMAT, "dataset": dataset, "task": get_task(dataset, task).name,
             "step": step, "per_class": per_class, "seed": seed, "source": source.describe(),
             "classes": classes}
    tmp = out / f".{INDEX}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    tmp.replace(out / INDEX)
    return index


def load_replay_set(path: str | Path) -> dict[str, Any]:
    """The index of a replay set directory (a clear error when it is missing or foreign)."""
    path = Path(path)
    file = path / INDEX
    if not file.is_file():
        raise FileNotFoundError(f"replay set '{path}' has no {INDEX}: build it with "
                                "`ucd data replay` (the workflow's replay_set rule)")
    index = json.loads(file.read_text())
    if index.get("format") != FORMAT:
        raise InputDataError(f"'{file}' is not a replay set index ({FORMAT})")
    return index


def describe_source(index: dict[str, Any]) -> str:
    """A short text naming the source of a replay set, e.g. 'digits' or 'folder /data/web'."""
    src = index["source"]
    extra = src.get("generator") or (src.get("root") if src["source"] == "folder" else None)
    return f"{src['source']} {extra}" if extra else str(src["source"])


class ReplayDataset(Dataset):
    """The first ``per_class`` images of each class of a replay set, augmented like the step's
    own images; labels are ``replay_code(c)`` (255 where a crop pads)."""

    def __init__(self, path: str | Path, *, dataset: str, task: str, step: int,
                 per_class: int, crop_size: int, flip: bool = True) -> None:
        self.root = Path(path)
        self.index = load_replay_set(self.root)
        want = (dataset, get_task(dataset, task).name, step)
        got = (self.index["dataset"], self.index["task"], self.index["step"])
        if got != want:
            raise ValueError(f"replay set '{self.root}' is for {got[0]} {got[1]} step {got[2]}, "
                             f"not {want[0]} {want[1]} step {want[2]}")
        self.samples: list[tuple[Path, int]] = []
        for c in old_classes(dataset, task, step):
            files = self.index["classes"].get(str(c), {}).get("images", [])
            if len(files) < per_class:
                raise ValueError(f"replay set '{self.root}' holds {len(files)} images of class "
                                 f"{c}, fewer than the {per_class} per class asked")
            self.samples += [(self.root / f, c) for f in files[:per_class]]
        self.transform = TrainTransform(crop_size, flip=flip)
        self.source = describe_source(self.index)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, c = self.samples[i]
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except OSError as err:
            raise InputDataError(f"replayed image '{path}' cannot be read: {err}") from err
        blank = np.zeros((image.size[1], image.size[0]), np.uint8)
        x, label = self.transform(image, blank)
        return x, torch.where(label == 255, label, torch.full_like(label, replay_code(c)))
