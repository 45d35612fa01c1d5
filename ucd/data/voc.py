"""Pascal VOC 2012 (+ SBD train_aug) reader; also reads the embedded digits benchmark.

Root: the directory holding `JPEGImages/`, or any of its parents `VOC2012/`, `VOCdevkit/`
(e.g. `--root data/voc` with `data/voc/VOCdevkit/VOC2012/JPEGImages`). Labels: the first of
the reader's `label_dirs` (tasks.yaml) holding `<id>.png` (SegmentationClassAug, then
SegmentationClass), palette or grayscale PNGs of class indices, 255 = boundary/ignore.
Lists (`train_aug.txt` / `val.txt`) are looked up in ImageSets/Segmentation,
ImageSets/SegmentationAug, list/, splits/ and the base directory itself; a line is an id
(`2007_000032`) or a DeepLab-style pair (`/JPEGImages/2007_000032.jpg /Segmentation.../...png`).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ucd.data.base import DatasetLayoutError, Reader, Sample, layout_error
from ucd.data.tasks import DatasetInfo

BASE_CANDIDATES = (".", "VOC2012", "VOCdevkit/VOC2012")
LIST_DIRS = ("ImageSets/Segmentation", "ImageSets/SegmentationAug", "list", "splits", ".")
IMAGE_EXTS = (".jpg", ".png", ".jpeg")
DEFAULT_LABEL_DIRS = ("SegmentationClassAug", "SegmentationClass")


def parse_list_line(line: str) -> str | None:
    """Image id of one list line (id alone or 'image_path label_path'); None if blank."""
    tok = line.strip().split()
    if not tok:
        return None
    name = PurePosixPath(tok[0].replace("\\", "/")).name
    for ext in IMAGE_EXTS:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


class VOCReader(Reader):
    """Reader of the VOC layout (JPEGImages, Segmentation* label dirs, ImageSets lists)."""

    def __init__(self, info: DatasetInfo, root: str | os.PathLike) -> None:
        super().__init__(info, root)
        opts = info.reader
        self.lists = {
            "train": tuple(opts.get("train_lists", ("train_aug.txt",))),
            "val": tuple(opts.get("val_lists", ("val.txt",))),
        }
        self.label_dirs = tuple(opts.get("label_dirs", DEFAULT_LABEL_DIRS))
        self.base = self._find_base()

    def _find_base(self) -> Path:
        for cand in BASE_CANDIDATES:
            base = self.root / cand
            if (base / "JPEGImages").is_dir():
                return base
        where = ", ".join(f"'{self.root / c}/JPEGImages'" for c in BASE_CANDIDATES)
        expected = f"one of the directories {where}"
        raise DatasetLayoutError(layout_error(self.info, self.root, expected))

    def list_file(self, split: str) -> Path:
        """The list file of `split` (first match of the accepted names and places)."""
        for d in LIST_DIRS:
            for name in self.lists[split]:
                p = self.base / d / name
                if p.is_file():
                    return p
        names = " or ".join(self.lists[split])
        dirs = ", ".join(f"'{self.base / d}'" for d in LIST_DIRS)
        expected = f"the {split} list {names} in one of {dirs}"
        found = self.base / "ImageSets" / "Segmentation"
        raise DatasetLayoutError(layout_error(self.info, self.root, expected, found))

    def _list(self, split: str) -> list[Sample]:
        path = self.list_file(split)
        ids = [i for i in (parse_list_line(x) for x in path.read_text().splitlines()) if i]
        if not ids:
            raise DatasetLayoutError(f"{self.info.name}: list file '{path}' is empty")
        label_dirs = [self.base / d for d in self.label_dirs if (self.base / d).is_dir()]
        if not label_dirs:
            dirs = " or ".join(f"'{self.base / d}'" for d in self.label_dirs)
            expected = f"a label directory {dirs}"
            raise DatasetLayoutError(layout_error(self.info, self.root, expected, self.base))
        out, missing = [], []
        images = _names(self.base / "JPEGImages")  # one directory listing, not a stat per file
        labels = [(d, _names(d)) for d in label_dirs]
        for i in ids:
            img = next((self.base / "JPEGImages" / (i + e) for e in IMAGE_EXTS
                        if i + e in images), None)
            lab = next((d / f"{i}.png" for d, names in labels if f"{i}.png" in names), None)
            if img is None or lab is None:
                missing.append((i, "image" if img is None else "label"))
                continue
            out.append(Sample(i, img, lab))
        if missing:
            first = ", ".join(f"{i} ({what})" for i, what in missing[:5])
            raise DatasetLayoutError(
                f"{self.info.name}: {len(missing)} of {len(ids)} ids of '{path}' have no file: "
                f"{first}{', ...' if len(missing) > 5 else ''}; images are looked up as "
                f"'{self.base}/JPEGImages/<id>.jpg|.png', labels as <id>.png in "
                f"{', '.join(str(d) for d in label_dirs)}. Obtain the data from: {self.info.source}"
            )
        return out


def _names(directory: Path) -> set[str]:
    """The names of the regular files in a directory (empty if it does not exist)."""
    try:
        with os.scandir(directory) as entries:
            return {e.name for e in entries if e.is_file()}
    except FileNotFoundError:
        return set()
