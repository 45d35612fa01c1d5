"""Common reader interface for the datasets' own on-disk layouts.

A reader lists (id, image path, label path) per split and decodes label PNGs into class
indices 0..N with 255 = ignore, via a 256-entry lookup table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ucd.data.tasks import DatasetInfo, get_dataset_info

SPLITS = ("train", "val")


class DatasetLayoutError(FileNotFoundError):
    """The dataset root is missing or not laid out as expected."""


class InputDataError(ValueError):
    """An image or label file is corrupt, truncated, or holds values the dataset does not have."""


@dataclass(frozen=True)
class Sample:
    """One image of a split: its id and the paths of its image and label files."""

    id: str
    image: Path
    label: Path


def describe_dir(path: Path, limit: int = 12) -> str:
    """Short description of what is at `path`, for error messages."""
    if not path.exists():
        return f"'{path}' does not exist"
    if not path.is_dir():
        return f"'{path}' is a file, not a directory"
    names = sorted(os.listdir(path))
    if not names:
        return f"'{path}' is empty"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    shown = ", ".join(names[:limit]) + more
    return f"'{path}' contains: {shown}"


def layout_error(info: DatasetInfo, root: Path, expected: str, found: Path | None = None) -> str:
    """Error text naming what was expected, what was found, and where the data comes from."""
    found_txt = describe_dir(found if found is not None else root)
    return (
        f"{info.name} data not found or not laid out as expected under root '{root}': "
        f"expected {expected}; found: {found_txt}. Obtain the data from: {info.source}"
    )


class Reader:
    """Base reader: subclasses implement `_list(split)` and set `self.lut`."""

    def __init__(self, info: DatasetInfo, root: str | os.PathLike) -> None:
        self.info = info
        self.root = Path(root)
        self.base = self.root  # the dataset's own top directory (subclasses locate it)
        self.lut = default_lut(info.num_classes, info.ignore_index)
        # raw label values a file may hold (subclasses with their own encoding replace it)
        self.valid_raw = default_valid(info.num_classes, info.ignore_index)
        self._cache: dict[str, list[Sample]] = {}

    def samples(self, split: str) -> list[Sample]:
        """Samples of `split` ("train" or "val"), in a fixed order."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
        if split not in self._cache:
            self._cache[split] = self._list(split)
        return self._cache[split]

    def _list(self, split: str) -> list[Sample]:  # pragma: no cover - abstract
        raise NotImplementedError

    def read_label(self, path: str | os.PathLike, *, strict: bool = False) -> np.ndarray:
        """Label PNG -> uint8 array of class indices (255 = ignore).

        strict: raise InputDataError on raw values outside `valid_raw` (instead of mapping them
        through the LUT); training and evaluation read labels strictly.
        """
        raw = read_index_png(path, dataset=self.info.name)
        if strict:
            check_label_values(raw, self.valid_raw, path, self.info.name)
        return self.lut[raw]

    def read_image(self, path: str | os.PathLike) -> Image.Image:
        """Image file -> RGB PIL image; InputDataError naming the file if it cannot be decoded."""
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except FileNotFoundError:
            raise
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise InputDataError(undecodable(self.info.name, "image", path, err)) from err

    def relpath(self, path: Path) -> str:
        """Path relative to the dataset's top directory (stored in split files, so the data
        may move and the root may be given as any accepted parent)."""
        return Path(os.path.relpath(path, self.base)).as_posix()


def default_lut(num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Identity on 0..num_classes-1; every other value -> ignore."""
    lut = np.full(256, ignore_index, dtype=np.uint8)
    lut[:num_classes] = np.arange(num_classes, dtype=np.uint8)
    return lut


def default_valid(num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """256-entry mask of the raw label values a file may hold: 0..num_classes-1 and ignore."""
    valid = np.zeros(256, dtype=bool)
    valid[:num_classes] = True
    valid[ignore_index] = True
    return valid


def describe_values(valid: np.ndarray) -> str:
    """'0..20, 255' for a mask of allowed values (for error messages)."""
    idx = np.flatnonzero(valid).tolist()
    parts, start = [], None
    for i, v in enumerate(idx):
        start = v if start is None else start
        if i + 1 == len(idx) or idx[i + 1] != v + 1:
            parts.append(str(v) if start == v else f"{start}..{v}")
            start = None
    return ", ".join(parts)


def check_label_values(
    raw: np.ndarray, valid: np.ndarray, path: str | os.PathLike, dataset: str
) -> None:
    """Raise InputDataError naming `path` if `raw` holds a value not allowed by `valid`."""
    bad = ~valid[raw]
    if bad.any():
        values = np.unique(raw[bad]).tolist()
        shown = ", ".join(map(str, values[:10])) + (", ..." if len(values) > 10 else "")
        raise InputDataError(
            f"{dataset}: label file '{path}' has {int(bad.sum())} pixels with values {shown} "
            f"that are not label values of {dataset} (allowed: {describe_values(valid)}); the "
            "file is corrupt or belongs to another dataset or encoding"
        )


def undecodable(dataset: str, what: str, path: str | os.PathLike, err: BaseException) -> str:
    """Error text for an image/label file that cannot be decoded."""
    return (
        f"{dataset}: {what} file '{path}' is corrupt or truncated and cannot be decoded "
        f"({type(err).__name__}: {err}); replace it with an intact copy of the dataset"
    )


def read_index_png(path: str | os.PathLike, dataset: str = "") -> np.ndarray:
    """Raw values of a palette ('P') or grayscale ('L') label PNG as a uint8 array."""
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode in ("P", "L"):
                return np.array(im, dtype=np.uint8)
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise InputDataError(undecodable(dataset or "dataset", "label", path, err)) from err
    raise ValueError(
        f"label file '{path}' has image mode {mode}; expected a palette (P) or "
        "grayscale (L) PNG whose pixel values are class indices"
    )


def get_reader(dataset: str, root: str | os.PathLike) -> Reader:
    """Reader of `dataset`'s on-disk layout (from tasks.yaml `layout`) at `root`."""
    info = get_dataset_info(dataset)
    if info.layout == "voc":
        from ucd.data.voc import VOCReader as cls
    elif info.layout == "ade":
        from ucd.data.ade import ADEReader as cls
    elif info.layout == "cityscapes":
        from ucd.data.cityscapes import CityscapesReader as cls
    else:
        raise ValueError(f"dataset {dataset}: unknown layout {info.layout!r} in tasks.yaml")
    return cls(info, root)
