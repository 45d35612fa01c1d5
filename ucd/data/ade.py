"""ADE20K scene-parsing reader (ADEChallengeData2016, 150 classes, 0 = other/background).

Root: the directory `ADEChallengeData2016/` or its parent. Layout:
`images/{training,validation}/ADE_*_XXXXXXXX.jpg` and
`annotations/{training,validation}/ADE_*_XXXXXXXX.png` (grayscale PNGs, value = class 0..150).
Ids are the file stems, sorted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

from ucd.data.base import DatasetLayoutError, Reader, Sample, layout_error
from ucd.data.tasks import DatasetInfo

SPLIT_DIRS = {"train": "training", "val": "validation"}


class ADEReader(Reader):
    """Reader of ADEChallengeData2016 (images/ + annotations/)."""

    def __init__(self, info: DatasetInfo, root: str | os.PathLike) -> None:
        super().__init__(info, root)
        self.base = self._find_base()

    def _find_base(self) -> Path:
        for base in (self.root / "ADEChallengeData2016", self.root):
            if (base / "images").is_dir() and (base / "annotations").is_dir():
                return base
        expected = (
            f"'{self.root}/ADEChallengeData2016/images' and '.../annotations' "
            f"(or '{self.root}/images' and '{self.root}/annotations')"
        )
        found = self.root / "ADEChallengeData2016"
        self._raise(expected, found if found.is_dir() else self.root)

    def _raise(self, expected: str, found: Path) -> NoReturn:
        raise DatasetLayoutError(layout_error(self.info, self.root, expected, found))

    def _list(self, split: str) -> list[Sample]:
        sub = SPLIT_DIRS[split]
        img_dir, ann_dir = self.base / "images" / sub, self.base / "annotations" / sub
        if not img_dir.is_dir() or not ann_dir.is_dir():
            missing = img_dir if not img_dir.is_dir() else ann_dir
            self._raise(f"directory '{missing}'", missing.parent)
        images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))
        if not images:
            self._raise(f"*.jpg images in '{img_dir}'", img_dir)
        out, missing_labels = [], []
        for p in images:
            lab = ann_dir / f"{p.stem}.png"
            if lab.is_file():
                out.append(Sample(p.stem, p, lab))
            else:
                missing_labels.append(p.stem)
        if missing_labels:
            raise DatasetLayoutError(
                f"{self.info.name}: {len(missing_labels)} images of '{img_dir}' have no "
                f"annotation '{ann_dir}/<id>.png' (e.g. {', '.join(missing_labels[:3])}). "
                f"Obtain the data from: {self.info.source}"
            )
        return out
