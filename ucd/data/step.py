"""Step datasets: the images of one incremental step and their masked labels (docs/protocol.md).

train, step k: the step's images from the split file; classes not learned at step k -> 0,
255 stays 255 unless `ignore_to_background` (MiB's choice). all_classes (Joint): every
training image, no masking. val, after step k: the full validation set (`images="all"`,
ours) or only its images holding a class seen so far (`images="seen"`, the peers' test sets);
classes not yet seen -> 255 (`unseen="ignore"`, ours) or -> 0 (`unseen="background"`, as
PLOP's and the official UCD code); all_classes: none masked. 255 stays 255 either way, and
class 0 becomes 255 with `background="ignore"` (MiB's ADE test loader).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ucd.data.base import InputDataError, Reader, Sample, get_reader
from ucd.data.decoded import decoded_for
from ucd.data.splits import SplitMismatchError, compute_split, load_split
from ucd.data.tasks import Task, check_setting, get_dataset_info, get_task
from ucd.data.transforms import TrainTransform, ValTransform


def train_lut(
    task: Task,
    step: int,
    num_classes: int,
    *,
    ignore_to_background: bool = False,
    all_classes: bool = False,
) -> np.ndarray:
    """256-entry map of training labels at `step`: new classes kept, others -> 0."""
    lut = np.zeros(256, np.uint8)
    keep = range(num_classes) if all_classes else task.new_classes(step)
    for c in keep:
        lut[c] = c
    lut[255] = 0 if ignore_to_background else 255
    return lut


UNSEEN_POLICIES = {"ignore": 255, "background": 0}  # test-time label of a class not yet seen


def check_unseen(unseen: str) -> str:
    """``unseen`` if it is a test-time policy for unseen classes, else a clear error."""
    if unseen not in UNSEEN_POLICIES:
        raise ValueError(f"unseen must be one of {list(UNSEEN_POLICIES)}, got {unseen!r}")
    return unseen


IMAGE_POLICIES = ("all", "seen")  # which validation images are scored
BACKGROUND_POLICIES = ("score", "ignore")  # whether pixels labelled 0 are scored


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ValueError(f"{name} must be one of {list(valid)}, got {value!r}")
    return value


def val_lut(
    task: Task, step: int, num_classes: int, *, all_classes: bool = False, unseen: str = "ignore",
    background: str = "score",
) -> np.ndarray:
    """256-entry map of validation labels after `step`: unseen classes -> 255 ("ignore") or
    0 ("background"); 255 stays 255; class 0 -> 255 with ``background="ignore"``."""
    lut = np.full(256, UNSEEN_POLICIES[check_unseen(unseen)], np.uint8)
    lut[255] = 255
    for c in range(num_classes) if all_classes else task.classes_seen(step):
        lut[c] = c
    if _check_choice("background", background, BACKGROUND_POLICIES) == "ignore":
        lut[0] = 255
    return lut


def holds_seen_class(label: np.ndarray) -> bool:
    """Whether a validation label (after ``val_lut``) holds a seen class other than background:
    a value in 1..254 (unseen classes became 0 or 255)."""
    return bool(((label > 0) & (label < 255)).any())


CACHE_LIMIT_BYTES = 256 * 2**20  # decoded images kept in memory when the whole set fits


class StepDataset(Dataset):
    """Samples of one step with a label lookup table and a transform.

    A small dataset (decoded size within CACHE_LIMIT_BYTES, e.g. the embedded digits) is
    decoded once and kept in memory: later epochs skip the PNG decoding. Cached arrays are
    read-only, so a transform that wrote into them would fail loudly.
    """

    def __init__(
        self,
        reader: Reader,
        samples: list[Sample],
        lut: np.ndarray,
        transform: Any,
        raw_transform: ValTransform,
        meta: dict[str, Any],
    ) -> None:
        self.reader, self.samples, self.lut = reader, samples, lut
        self.transform, self.raw_transform, self.meta = transform, raw_transform, meta
        self.ids = [s.id for s in samples]
        self._cache: dict[int, tuple[Any, np.ndarray]] | None = {}

    def __len__(self) -> int:
        return len(self.samples)

    def _decode(self, index: int) -> tuple[Any, np.ndarray]:
        s = self.samples[index]
        decoded = decoded_for(self.reader)  # the images decoded once for every job, if given
        pair = decoded.get(self.meta["split"], s) if decoded is not None else None
        if pair is None:
            pair = self.reader.read_image(s.image), self.reader.read_label(s.label, strict=True)
        img, raw = pair
        label = self.lut[raw]
        if label.shape != (img.size[1], img.size[0]):
            raise InputDataError(
                f"{self.reader.info.name} {s.id}: label {label.shape[::-1]} and image "
                f"{img.size} sizes differ ('{s.label}', '{s.image}')"
            )
        return img, label

    def _load(self, index: int) -> tuple[Any, np.ndarray]:
        """Decoded PIL image and masked label (from the cache when the dataset is small)."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        img, label = self._decode(index)
        if self._cache is not None and not self._cache:  # first image: does the whole set fit?
            if 4 * label.size * len(self.samples) > CACHE_LIMIT_BYTES:
                self._cache = None
        if self._cache is not None:
            label.setflags(write=False)
            self._cache[index] = (img, label)
        return img, label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, label = self._load(index)
        return self.transform(img, label)

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Un-normalised uint8 image (H, W, 3) and masked label, validation geometry (no
        augmentation): pixel-aligned with the model input of the validation transform."""
        img, label = self._load(index)
        return self.raw_transform.geometry(img, label)


def _train_samples(
    reader: Reader,
    t: Task,
    dataset: str,
    root: Any,
    setting: str,
    step: int,
    split_file: Any,
    verify: bool | str,
) -> list[Sample]:
    if split_file is None:
        split = compute_split(dataset, root, t.name, setting, workers=1, progress=False)
        where = "computed split"
    elif isinstance(split_file, dict):
        split, where = split_file, "given split"
    else:
        split = load_split(split_file, root=root, verify=verify)
        where = f"split file '{split_file}'"
    got = (split.get("dataset"), split.get("task"), split.get("setting"))
    if got != (dataset, t.name, setting):
        raise ValueError(
            f"{where} is for {'/'.join(map(str, got))}, not {dataset}/{t.name}/{setting}"
        )
    by_id = {s.id: s for s in reader.samples("train")}
    missing = [i for i in split["ids"][step] if i not in by_id]
    if missing:
        raise SplitMismatchError(
            f"{where}: {len(missing)} ids of step {step} are not training images under "
            f"'{root}' (e.g. {', '.join(missing[:3])}); recompute the split"
        )
    return [by_id[i] for i in split["ids"][step]]


def make_dataset(
    dataset: str,
    root: str | os.PathLike,
    task: str,
    setting: str,
    step: int,
    split: str,
    *,
    split_file: str | os.PathLike | dict | None = None,
    crop_size: int,
    train_augment: bool = True,
    flip: bool = True,
    ignore_to_background: bool = False,
    all_classes: bool = False,
    verify: bool | str = True,
    unseen: str = "ignore",
    images: str = "all",
    background: str = "score",
) -> StepDataset:
    """Dataset of `step` of `task` for split "train" or "val" (see module doc).

    split_file: the step's image ids (path, or a dict from compute_split); None computes
    them in memory. verify: data check of the split file ("fast", "full" or False).
    unseen: "val" labels of classes not yet seen, "ignore" (255) or "background" (0).
    images: "val" images scored, "all" or "seen" (only those holding a class seen so far,
    background aside, in their full label: the peers' test sets). background: "val" pixels
    labelled 0, "score" or "ignore" (255, MiB's ADE test loader).
    """
    info = get_dataset_info(dataset)
    check_setting(dataset, setting)
    t = get_task(dataset, task)
    if not isinstance(step, int) or not 0 <= step < t.n_steps:
        raise ValueError(f"step {step!r} out of range for {dataset}/{t.name} (0..{t.n_steps - 1})")
    if not isinstance(crop_size, int) or crop_size < 1:
        raise ValueError(f"crop_size must be a positive int (got {crop_size!r})")
    check_unseen(unseen)
    _check_choice("images", images, IMAGE_POLICIES)
    reader = get_reader(dataset, root)
    raw_tf = ValTransform(crop_size)
    meta = dict(dataset=dataset, task=t.name, setting=setting, step=step, split=split,
                all_classes=all_classes, unseen=unseen, root=str(Path(root)))
    if split == "val":
        meta.update(images=images, background=background)
    if split == "train":
        if all_classes:
            samples = reader.samples("train")
        else:
            samples = _train_samples(reader, t, dataset, root, setting, step, split_file, verify)
        lut = train_lut(t, step, info.num_classes, ignore_to_background=ignore_to_background,
                        all_classes=all_classes)
        tf = TrainTransform(crop_size, flip=flip) if train_augment else raw_tf
    elif split == "val":
        samples = reader.samples("val")
        lut = val_lut(t, step, info.num_classes, all_classes=all_classes, unseen=unseen,
                      background=background)
        tf = raw_tf
    else:
        raise ValueError(f"unknown split {split!r}; valid splits: train, val")
    ds = StepDataset(reader, samples, lut, tf, raw_tf, meta)
    return seen_only(ds) if split == "val" and images == "seen" else ds


def seen_only(ds: StepDataset) -> StepDataset:
    """The validation images whose full label (before the crop) holds a seen class."""
    keep = [s for i, s in enumerate(ds.samples) if holds_seen_class(ds._load(i)[1])]
    return StepDataset(ds.reader, keep, ds.lut, ds.transform, ds.raw_transform, ds.meta)
