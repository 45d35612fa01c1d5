"""Cityscapes fine-annotation reader: label ids -> classes 1..19 (train-id order), void -> 0.

Root: the directory holding `leftImg8bit/` and `gtFine/` (or its parent `cityscapes/`).
Images `leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png`, labels
`gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png`. The label id of each
class 1..19 is the reader option `label_ids` of tasks.yaml; every other id (void, license
plate, ...) becomes 0 (background). Ids are `<city>/<city>_<seq>_<frame>`, sorted.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ucd.data.base import DatasetLayoutError, Reader, Sample, layout_error
from ucd.data.tasks import DatasetInfo

IMG_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
MAX_LABEL_ID = 33  # the largest Cityscapes label id ('bicycle'); license plate (-1) is not drawn


def cityscapes_lut(label_ids: list[int]) -> np.ndarray:
    """256-entry map: label id of class i+1 -> i+1, everything else -> 0."""
    lut = np.zeros(256, np.uint8)
    for cls, lid in enumerate(label_ids, start=1):
        lut[lid] = cls
    return lut


class CityscapesReader(Reader):
    """Reader of Cityscapes leftImg8bit/ + gtFine/ (labelIds PNGs)."""

    def __init__(self, info: DatasetInfo, root: str | os.PathLike) -> None:
        super().__init__(info, root)
        ids = list(info.reader.get("label_ids", []))
        if len(ids) != info.num_classes - 1:
            raise ValueError(
                f"{info.name}: tasks.yaml reader.label_ids has {len(ids)} entries, "
                f"expected {info.num_classes - 1}"
            )
        self.lut = cityscapes_lut(ids)
        self.valid_raw = np.zeros(256, bool)  # labelIds 0..33 (labels.py); 255 tolerated
        self.valid_raw[: MAX_LABEL_ID + 1] = True
        self.valid_raw[255] = True
        self.base = self._find_base()

    def _find_base(self) -> Path:
        for base in (self.root, self.root / "cityscapes"):
            if (base / "leftImg8bit").is_dir() and (base / "gtFine").is_dir():
                return base
        expected = f"directories '{self.root}/leftImg8bit' and '{self.root}/gtFine'"
        raise DatasetLayoutError(layout_error(self.info, self.root, expected))

    def _list(self, split: str) -> list[Sample]:
        img_dir, lab_dir = self.base / "leftImg8bit" / split, self.base / "gtFine" / split
        for d in (img_dir, lab_dir):
            if not d.is_dir():
                raise DatasetLayoutError(
                    layout_error(self.info, self.root, f"directory '{d}'", d.parent)
                )
        images = sorted(img_dir.glob(f"*/*{IMG_SUFFIX}"))
        if not images:
            raise DatasetLayoutError(
                layout_error(self.info, self.root, f"'{img_dir}/<city>/*{IMG_SUFFIX}'", img_dir)
            )
        out, missing = [], []
        for p in images:
            city, stem = p.parent.name, p.name[: -len(IMG_SUFFIX)]
            lab = lab_dir / city / f"{stem}{LABEL_SUFFIX}"
            if lab.is_file():
                out.append(Sample(f"{city}/{stem}", p, lab))
            else:
                missing.append(f"{city}/{stem}")
        if missing:
            raise DatasetLayoutError(
                f"{self.info.name}: {len(missing)} images of '{img_dir}' have no label "
                f"'{lab_dir}/<city>/<id>{LABEL_SUFFIX}' (e.g. {', '.join(missing[:3])}). "
                f"Obtain the data from: {self.info.source}"
            )
        return out
