"""Builders of tiny datasets in each dataset's real on-disk format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ucd.data.tasks import voc_colormap


def _image(shape: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8), "RGB")


def write_palette_png(path: Path, label: np.ndarray) -> None:
    """VOC-style palette PNG ('P' mode) of class indices."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(label.astype(np.uint8), "P")
    pal = [v for c in voc_colormap(256) for v in c]
    im.putpalette(pal)
    im.save(path)


def write_gray_png(path: Path, label: np.ndarray) -> None:
    """Grayscale ('L') PNG of raw values (SegmentationClassAug, ADE, Cityscapes labelIds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label.astype(np.uint8), "L").save(path)


def label_with(classes: list[int], size: int = 8) -> np.ndarray:
    """size x size label: background, then one horizontal band per value of `classes`."""
    lab = np.zeros((size, size), np.uint8)
    for i, c in enumerate(classes):
        lab[i + 1, :] = c
    return lab


def build_voc(
    root: Path,
    train: dict[str, np.ndarray],
    val: dict[str, np.ndarray],
    *,
    sub: str = "VOCdevkit/VOC2012",
    aug: bool = True,
    pairs: bool = False,
) -> Path:
    """VOC 2012 + SBD layout: JPEGImages/*.jpg, SegmentationClassAug (gray) for train_aug,
    SegmentationClass (palette) for val, lists in ImageSets/Segmentation."""
    base = root / sub
    lists = base / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True, exist_ok=True)
    for n, (split, items) in enumerate((("train_aug", train), ("val", val))):
        lines = []
        for j, (i, lab) in enumerate(items.items()):
            (base / "JPEGImages").mkdir(parents=True, exist_ok=True)
            _image(lab.shape, 100 * n + j).save(base / "JPEGImages" / f"{i}.jpg")
            if split == "train_aug" and aug:
                write_gray_png(base / "SegmentationClassAug" / f"{i}.png", lab)
                lines.append(f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png" if pairs else i)
            else:
                write_palette_png(base / "SegmentationClass" / f"{i}.png", lab)
                lines.append(i)
        (lists / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return base


def build_ade(root: Path, train: dict[str, np.ndarray], val: dict[str, np.ndarray]) -> Path:
    """ADEChallengeData2016/{images,annotations}/{training,validation}."""
    base = root / "ADEChallengeData2016"
    for n, (sub, items) in enumerate((("training", train), ("validation", val))):
        (base / "images" / sub).mkdir(parents=True, exist_ok=True)
        for j, (i, lab) in enumerate(items.items()):
            _image(lab.shape, 100 * n + j).save(base / "images" / sub / f"{i}.jpg")
            write_gray_png(base / "annotations" / sub / f"{i}.png", lab)
    return base


def build_cityscapes(root: Path, train: dict[str, np.ndarray], val: dict[str, np.ndarray]) -> Path:
    """leftImg8bit/{split}/<city>/<id>_leftImg8bit.png + gtFine/.../<id>_gtFine_labelIds.png;
    ids are '<city>/<city>_<seq>_<frame>'."""
    for n, (split, items) in enumerate((("train", train), ("val", val))):
        for j, (i, lab) in enumerate(items.items()):
            city, stem = i.split("/")
            img = root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
            img.parent.mkdir(parents=True, exist_ok=True)
            _image(lab.shape, 100 * n + j).save(img)
            write_gray_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", lab)
    return root


@pytest.fixture
def builders():
    """The dataset builders, as a namespace."""

    class B:
        voc = staticmethod(build_voc)
        ade = staticmethod(build_ade)
        cityscapes = staticmethod(build_cityscapes)
        label_with = staticmethod(label_with)
        palette_png = staticmethod(write_palette_png)
        gray_png = staticmethod(write_gray_png)

    return B


# VOC 15-5 / 15-1 fixture: id -> classes present (besides 0); hand-computed selections below.
VOC_TRAIN = {
    "a": [1],
    "b": [1, 16],
    "c": [17],
    "d": [],
    "e": [3, 255],
    "f": [15, 20, 255],
    "g": [16, 18],
}
VOC_VAL = {"v1": [1, 16, 255], "v2": [20, 2]}


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    """Tiny VOC-with-SBD tree under tmp_path/voc (root to point the reader at)."""
    root = tmp_path / "voc"
    build_voc(
        root,
        {i: label_with(c) for i, c in VOC_TRAIN.items()},
        {i: label_with(c) for i, c in VOC_VAL.items()},
    )
    return root


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated digits benchmark (shared by the tests of a session)."""
    from ucd.data.digits import generate

    root = tmp_path_factory.mktemp("digits")
    generate(root, seed=3, n_train=120, n_val=30, progress=False)
    return root


# Cityscapes' 19 train classes in docs/protocol.md's order (they become classes 1..19).
PROTOCOL_ORDER = [
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
]
