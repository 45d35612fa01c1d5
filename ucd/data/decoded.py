"""A dataset's images decoded once, memory-mapped by every job that reads them.

Every training job decodes the image and label files of its step and of the validation set:
on the embedded benchmark 0.5-0.7 ms of CPU per image, the same pixels in every job (7.7
CPU-minutes over the 945 jobs of config/embedded.yaml; ``benchmarks/job_cost.py decode``).
``ucd data decode`` writes them once (the workflow's ``decode_data`` rule, for the datasets it
generates); a job given ``--decoded DIR`` reads them from there (0.05 ms per image).

The arrays hold what the dataset's reader returns (the RGB pixels; the labels after the
reader's strict value check and lookup table), so a step's samples are the same either way.
``index.json`` records the ids of each split and the size and modification time of every file
they came from: a job refuses arrays whose ids differ from the reader's, or whose files (each
sample's, as it reads it) have changed since. One image size per split: a split whose images
differ in size is not decoded (the index says why) and the jobs read its files, as before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ucd.data.base import SPLITS, InputDataError, Reader, Sample, get_reader

FORMAT = "ucd-decoded/1"
INDEX = "index.json"
_USED: dict[str, Path] = {}  # real path of a data root -> decoded directory, this process
_OPEN: dict[tuple[str, str], Decoded] = {}


def _stamp(sample: Sample) -> list[int]:
    """Size and modification time of a sample's image and label files."""
    a, b = os.stat(sample.image), os.stat(sample.label)
    return [a.st_size, a.st_mtime_ns, b.st_size, b.st_mtime_ns]


def write_decoded(dataset: str, root: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Decode every image and label of ``dataset`` under ``root`` into arrays in ``out``;
    return the index (written last, so a half-written directory has none)."""
    reader = get_reader(dataset, root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / INDEX).unlink(missing_ok=True)
    index: dict[str, Any] = {"format": FORMAT, "dataset": dataset,
                             "root": str(Path(root).resolve()), "splits": {}}
    for split in SPLITS:
        samples = reader.samples(split)
        images = [np.asarray(reader.read_image(s.image)) for s in samples]
        labels = [reader.read_label(s.label, strict=True) for s in samples]
        sizes = {im.shape[:2] for im in images} | {lab.shape for lab in labels}
        if len(sizes) != 1:  # the jobs decode this split's files themselves
            index.setdefault("files_read_by_jobs", {})[split] = (
                f"images and labels come in {len(sizes)} sizes (e.g. {sorted(sizes)[:3]}); "
                "decoded arrays hold one size")
            continue
        np.save(out / f"{split}.images.npy", np.stack(images))
        np.save(out / f"{split}.labels.npy", np.stack(labels))
        index["splits"][split] = {"ids": [s.id for s in samples],
                                  "files": [_stamp(s) for s in samples]}
    tmp = out / f".{INDEX}.tmp"
    tmp.write_text(json.dumps(index))
    tmp.replace(out / INDEX)
    return index


def read_index(directory: str | os.PathLike) -> dict:
    path = Path(directory) / INDEX
    if not path.is_file():
        raise FileNotFoundError(
            f"no decoded images in '{directory}' ({INDEX} missing); write them with "
            "`python -m ucd data decode DATASET --root DIR --out DIR`")
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT:
        raise InputDataError(f"'{path}' is not a {FORMAT} index")
    return index


def use(directory: str | os.PathLike) -> str:
    """Read the images of the data root that ``directory`` was decoded from there, in this
    process (a job: ``ucd train --decoded``); return that root."""
    root = read_index(directory)["root"]
    _USED[os.path.realpath(root)] = Path(directory)
    return root


def forget() -> None:
    """Decode the files again (tests)."""
    _USED.clear()
    _OPEN.clear()


class Decoded:
    """The decoded arrays of one data root, checked against its reader's files per split."""

    def __init__(self, directory: Path, reader: Reader) -> None:
        self.directory, self.reader = directory, reader
        self.index = read_index(directory)
        if self.index["dataset"] != reader.info.name:
            raise InputDataError(f"'{directory}' holds {self.index['dataset']} images, not "
                                 f"{reader.info.name}")
        self.rows: dict[str, dict[str, int]] = {}
        self.arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _open(self, split: str) -> None:
        ids = self.index["splits"][split]["ids"]
        if ids != [s.id for s in self.reader.samples(split)]:
            raise InputDataError(
                f"the decoded {split} images in '{self.directory}' are not those listed under "
                f"'{self.reader.root}' (images added or removed since `ucd data decode`); "
                "decode them again")
        self.rows[split] = {i: r for r, i in enumerate(ids)}
        self.arrays[split] = tuple(np.load(self.directory / f"{split}.{kind}.npy",
                                           mmap_mode="r") for kind in ("images", "labels"))

    def get(self, split: str, sample: Sample) -> tuple[Image.Image, np.ndarray] | None:
        """The RGB image and the reader's label array of one sample (whose files must be
        those decoded), or None where the split was not decoded (images of several sizes:
        the job reads the files)."""
        if split not in self.index["splits"]:
            return None
        if split not in self.rows:
            self._open(split)
        row = self.rows[split][sample.id]
        if _stamp(sample) != self.index["splits"][split]["files"][row]:
            raise InputDataError(
                f"the decoded {split} image {sample.id} in '{self.directory}' is not the one "
                f"under '{self.reader.root}' ('{sample.image}' or '{sample.label}' changed "
                "since `ucd data decode`); decode them again")
        images, labels = self.arrays[split]
        return Image.fromarray(np.asarray(images[row])), np.array(labels[row])


def decoded_for(reader: Reader) -> Decoded | None:
    """The decoded arrays this process reads for ``reader``'s root, or None (decode files)."""
    if not _USED:
        return None
    key = os.path.realpath(reader.root)
    directory = _USED.get(key)
    if directory is None:
        return None
    if (key, str(directory)) not in _OPEN:
        _OPEN[(key, str(directory))] = Decoded(directory, reader)
    return _OPEN[(key, str(directory))]
