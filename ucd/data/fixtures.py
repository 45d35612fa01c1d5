"""Fixture datasets in the real on-disk formats of Pascal VOC 2012 (+ SBD), ADE20K and
Cityscapes, generated here (nothing downloaded) for the rehearsal of the paper's grid.

Why: the paper's grid (config/paper.yaml) reads three datasets this machine does not have.
`config/rehearsal.yaml` runs that grid on these fixtures, laid out exactly as the real data,
so that the readers, the splits, the per-row conventions, the tables and the figures run end
to end before any GPU hour. Every class of every task of `ucd/data/tasks.yaml` appears in the
training and the validation images, so every step of every task has training images in both
settings and every class is scored. Images are small (32-64 px) and deterministic in the seed;
each object is a shape filled with its class's palette colour and some texture on a textured
grey background, so that a tiny model can learn something (the rehearsal's numbers still mean
nothing).

Every root holds `fixture.json`, the manifest: per image its split, its classes and the true
number of pixels of each class index after the protocol's mapping (Cityscapes void -> 0) and of
ignore (255), counted before the labels are encoded into the dataset's own values. The tests
compare what the readers yield with it, so a reader that reads a value wrongly (VOC's 255 border
as a class, ADE's 0 as anything but background, a Cityscapes void id as a class) fails there.

Layouts (those of the real datasets, read by ucd/data/{voc,ade,cityscapes}.py):

- voc: `VOCdevkit/VOC2012/JPEGImages/<id>.jpg`, `SegmentationClassAug/<id>.png` (grey PNGs
  of class indices as the SBD conversion ships them; objects of VOC's own images carry a 255
  border and some a 255 "difficult" patch, the SBD ones none), `ImageSets/Segmentation/
  {train_aug,val}.txt`; `replay/<class name>/*.jpg` (RECALL's folder source, one per class)
- ade: `ADEChallengeData2016/{images,annotations}/{training,validation}/ADE_{train,val}_
  <8 digits>.{jpg,png}` (grey, 0 = other, 1..150)
- cityscapes: `leftImg8bit/{train,val}/<city>/<city>_<6>_<6>_leftImg8bit.png`,
  `gtFine/{train,val}/<city>/..._gtFine_labelIds.png` (Cityscapes label ids: the 19 classes'
  and the void ids 0-6, 9, 10, 14-16, 18, 29, 30), `_gtFine_color.png` and
  `_gtFine_instanceIds.png` (16 bit) beside them, as in the real release

`python -m ucd.data.fixtures --out DIR [--datasets voc,ade,cityscapes]` writes DIR/<dataset>;
the workflow's `generate_data` rule writes one (`ucd data generate voc --root DIR`).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ucd.data.tasks import get_dataset_info

FORMAT = "ucd-fixture/1"
FIXTURES = ("voc", "ade", "cityscapes")
MANIFEST = "fixture.json"
IGNORE = 255

# The Cityscapes label ids (cityscapesScripts' labels.py), by class name: the fixture's own
# statement of the real encoding, independent of tasks.yaml's reader.label_ids (which the tests
# check against it through the manifest). License plate (-1) is never drawn in labelIds files.
CITYSCAPES_IDS = {
    "road": 7, "sidewalk": 8, "building": 11, "wall": 12, "fence": 13, "pole": 17,
    "traffic light": 19, "traffic sign": 20, "vegetation": 21, "terrain": 22, "sky": 23,
    "person": 24, "rider": 25, "car": 26, "truck": 27, "bus": 28, "train": 31,
    "motorcycle": 32, "bicycle": 33,
}  # fmt: skip
# unlabeled, ego vehicle, rectification border, out of roi, static, dynamic, ground, parking,
# rail track, guard rail, bridge, tunnel, polegroup, caravan, trailer: all background (0)
CITYSCAPES_VOID_IDS = (0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30)
CITIES = {"train": ("aachen", "bochum"), "val": ("frankfurt", "lindau")}


@dataclass(frozen=True)
class Scene:
    """One image to draw: its id, split, classes (objects, in drawing order) and size."""

    id: str
    split: str  # train | val
    classes: tuple[int, ...]
    size: tuple[int, int]  # (height, width)
    border: bool = False  # VOC: a 255 ring around every object (VOC's own annotations)
    difficult: bool = False  # VOC: a 255 patch in the background (a "difficult" object)


# ------------------------------------------------------------------------- scene lists

SIZES = ((48, 64), (64, 48), (48, 48))


# Every training scene is drawn this many times (other shapes, sizes and colours), so that each
# step of every task has at least a batch of 6 images (config/rehearsal.yaml; 8 for the
# SDR rows, paper.yaml).
TRAIN_COPIES = 3


def voc_scenes() -> list[Scene]:
    """VOC: per class two images of it alone and one with the previous class (so disjoint and
    overlapped differ and every one-class step has 3 images, 9 with TRAIN_COPIES), an image of
    background only; validation: every class twice, in pairs."""
    train: list[tuple[int, ...]] = []
    for c in range(1, 21):
        train += [(c,), (c,)] + ([(c - 1, c)] if c > 1 else [(c, 1 + c % 20)])
    train = (train + [()]) * TRAIN_COPIES
    val = [(c, c % 20 + 1) for c in range(1, 21, 2)] + [(c, (c + 4) % 20 + 1)
                                                       for c in range(2, 21, 2)]
    out = []
    for n, (split, classes) in enumerate([("train", t) for t in train] + [("val", v)
                                                                         for v in val]):
        out.append(Scene(f"{2007 + n % 6}_{n:06d}", split, classes, SIZES[n % 3],
                         border=n % 4 != 3, difficult=n % 5 == 0))
    return out


def ade_scenes() -> list[Scene]:
    """ADE20K: per block of 10 classes (the step boundaries of every ADE task are multiples of
    10) three images covering it and one mixing two of its classes with the previous block's
    last, and an image of 'other' only; validation: two images per block, five classes each."""
    train: list[tuple[int, ...]] = []
    for b in range(15):
        first = 10 * b + 1
        train += [tuple(range(first, first + 3)), tuple(range(first + 3, first + 6)),
                  tuple(range(first + 6, first + 10))]
        if b:
            train.append((first - 1, first, first + 4))
    train = (train + [()]) * TRAIN_COPIES
    val = [tuple(range(10 * b + 1 + h, 10 * b + 6 + h)) for b in range(15) for h in (0, 5)]
    scenes = [Scene(f"ADE_train_{n + 1:08d}", "train", t, SIZES[n % 3])
              for n, t in enumerate(train)]
    return scenes + [Scene(f"ADE_val_{n + 1:08d}", "val", v, SIZES[n % 3])
                     for n, v in enumerate(val)]


def cityscapes_scenes() -> list[Scene]:
    """Cityscapes: three images per class added after step 0 (14..19), each with three
    step-0 classes in turn, and three images of step-0 classes only; validation: every later
    class once, every step-0 class at least once. Void ids fill the rest of every image."""
    base = list(range(1, 14))
    train, val = [], []
    for n in range(21):
        later = (14 + n // 3,) if n < 18 else ()
        train.append(tuple(base[(3 * n + i) % 13] for i in range(3)) + later)
    train = train * TRAIN_COPIES
    for n in range(7):
        later = (14 + n,) if n < 6 else ()
        val.append(tuple(base[(2 * n + i) % 13] for i in range(2)) + later)
    out = []
    for n, (split, classes) in enumerate([("train", t) for t in train] + [("val", v)
                                                                         for v in val]):
        city = CITIES[split][n % 2]
        out.append(Scene(f"{city}/{city}_{n:06d}_{19 + n:06d}", split, classes, (32, 64)))
    return out


SCENES = {"voc": voc_scenes, "ade": ade_scenes, "cityscapes": cityscapes_scenes}


# ---------------------------------------------------------------------------- drawing


def _cells(n: int, box: tuple[int, int, int, int]) -> Iterator[tuple[int, int, int, int]]:
    """n cells (top, left, height, width) of a grid over box = (top, left, height, width)."""
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    top, left, h, w = box
    for i in range(n):
        r, c = divmod(i, cols)
        y0, y1 = top + r * h // rows, top + (r + 1) * h // rows
        x0, x1 = left + c * w // cols, left + (c + 1) * w // cols
        yield y0, x0, y1 - y0, x1 - x0


def _shape(rng: np.random.Generator, cell: tuple[int, int, int, int],
           shape: tuple[int, int]) -> np.ndarray:
    """Mask of one object (a rectangle or an ellipse) filling 60-90 % of its cell."""
    top, left, ch, cw = cell
    oh, ow = (max(5, int(d * rng.uniform(0.6, 0.9))) for d in (ch, cw))
    y0 = top + int(rng.integers(0, max(1, ch - oh + 1)))
    x0 = left + int(rng.integers(0, max(1, cw - ow + 1)))
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    inside = (yy >= y0) & (yy < y0 + oh) & (xx >= x0) & (xx < x0 + ow)
    if rng.random() < 0.5:
        cy, cx = y0 + (oh - 1) / 2, x0 + (ow - 1) / 2
        inside &= ((yy - cy) / (oh / 2)) ** 2 + ((xx - cx) / (ow / 2)) ** 2 <= 1.0
    return inside


def _inner_edge(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask with a 4-neighbour outside it (the 1-px border VOC marks 255)."""
    p = np.pad(mask, 1, constant_values=False)
    interior = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:] & mask
    return mask & ~interior


def draw(scene: Scene, palette: list[tuple[int, int, int]], seed: int,
         ) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, class-index label with 255 = ignore) of one scene, deterministic in seed.

    Validation objects stay in the central square, which the validation crop keeps."""
    rng = np.random.default_rng(seed)
    h, w = scene.size
    grey = rng.uniform(90, 160)
    image = grey + rng.normal(0, 18, (h, w, 1)) + rng.normal(0, 6, (h, w, 3))
    label = np.zeros((h, w), np.uint8)
    side = min(h, w)
    box = ((h - side) // 2, (w - side) // 2, side, side) if scene.split == "val" else (0, 0, h, w)
    for c, cell in zip(scene.classes, _cells(len(scene.classes), box)):
        mask = _shape(rng, cell, (h, w))
        stripes = 10 * np.sin(np.arange(w) / rng.uniform(1, 3))[None, :, None]
        texture = rng.normal(0, 12, (h, w, 1)) + stripes
        image[mask] = (np.asarray(palette[c], float) + texture)[mask]
        label[mask] = c
        if scene.border:
            label[_inner_edge(mask)] = IGNORE
    if scene.difficult:
        y, x = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
        patch = label[y : y + 4, x : x + 4]
        patch[patch == 0] = IGNORE
    return np.clip(image, 0, 255).astype(np.uint8), label


def pixel_counts(label: np.ndarray) -> dict[str, int]:
    """{class index or 255: pixels} of a class-index label (what the manifest records)."""
    values, counts = np.unique(label, return_counts=True)
    return {str(int(v)): int(n) for v, n in zip(values, counts)}


def cityscapes_encode(label: np.ndarray, class_names: list[str], offset: int) -> np.ndarray:
    """Class indices -> Cityscapes label ids; background pixels take void ids, in vertical
    stripes of 6 px starting at the offset-th void id (so every void id occurs)."""
    lut = np.zeros(256, np.uint8)
    for cls, name in enumerate(class_names[1:], start=1):
        lut[cls] = CITYSCAPES_IDS[name]
    raw = lut[label]
    stripes = (np.arange(label.shape[1]) // 6 + offset) % len(CITYSCAPES_VOID_IDS)
    void = np.asarray(CITYSCAPES_VOID_IDS, np.uint8)[stripes]
    background = label == 0
    raw[background] = np.broadcast_to(void, label.shape)[background]
    return raw


# ---------------------------------------------------------------------------- writing


def _save(array: np.ndarray, path: Path, mode: str | None = None, **kw: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path, **kw)


def _write_voc(root: Path, scene: Scene, image: np.ndarray, label: np.ndarray,
               info: Any) -> None:
    base = root / "VOCdevkit" / "VOC2012"
    _save(image, base / "JPEGImages" / f"{scene.id}.jpg", quality=92)
    _save(label, base / "SegmentationClassAug" / f"{scene.id}.png", "L")


def _write_ade(root: Path, scene: Scene, image: np.ndarray, label: np.ndarray,
               info: Any) -> None:
    sub = "training" if scene.split == "train" else "validation"
    base = root / "ADEChallengeData2016"
    _save(image, base / "images" / sub / f"{scene.id}.jpg", quality=92)
    _save(label, base / "annotations" / sub / f"{scene.id}.png", "L")


def _write_cityscapes(root: Path, scene: Scene, image: np.ndarray, label: np.ndarray,
                      info: Any) -> None:
    city, stem = scene.id.split("/")
    n = int(stem.split("_")[1])
    _save(image, root / "leftImg8bit" / scene.split / city / f"{stem}_leftImg8bit.png")
    gt = root / "gtFine" / scene.split / city / stem
    raw = cityscapes_encode(label, info.class_names, n)
    _save(raw, Path(f"{gt}_gtFine_labelIds.png"), "L")
    colour = np.asarray(info.palette, np.uint8)[np.where(label == IGNORE, 0, label)]
    _save(colour, Path(f"{gt}_gtFine_color.png"))
    # instance classes (person .. bicycle): label id x 1000 + instance number, as released
    instances = np.where(raw >= 24, raw.astype(np.int32) * 1000 + 1, raw)
    Image.fromarray(instances.astype(np.uint16)).save(f"{gt}_gtFine_instanceIds.png")


WRITERS = {"voc": _write_voc, "ade": _write_ade, "cityscapes": _write_cityscapes}


def write_voc_lists(root: Path, scenes: list[Scene]) -> None:
    """ImageSets/Segmentation/{train_aug,val}.txt, one id a line."""
    lists = root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "train_aug.txt"), ("val", "val.txt")):
        ids = [s.id for s in scenes if s.split == split]
        (lists / name).write_text("".join(f"{i}\n" for i in ids))


def write_replay_folder(root: Path, dataset: str, per_class: int, seed: int) -> None:
    """replay/<class name>/NNN.jpg: images of one object of the class (RECALL's folder)."""
    info = get_dataset_info(dataset)
    for c, name in enumerate(info.class_names[1:], start=1):
        for j in range(per_class):
            scene = Scene(f"{c}-{j}", "train", (c,), (48, 48))
            image, _ = draw(scene, info.palette, seed * 100_003 + 7919 * c + j + 1)
            _save(image, root / "replay" / name / f"{j:03d}.jpg", quality=92)


def generate(dataset: str, root: str | Path, *, seed: int = 0, replay_per_class: int = 4,
             ) -> dict[str, Any]:
    """Write the fixture of `dataset` under `root` (replaced if it exists) and return its
    manifest; VOC also gets a replay folder of `replay_per_class` images per class."""
    if dataset not in SCENES:
        raise ValueError(f"no fixture for dataset {dataset!r}; fixtures: {', '.join(FIXTURES)}")
    root = Path(root)
    if root.is_dir() and any(root.iterdir()):
        if not (root / MANIFEST).is_file():
            raise ValueError(f"'{root}' is not empty and holds no fixture ({MANIFEST}): "
                             "refusing to replace it; give an empty or new directory")
        shutil.rmtree(root)
    info = get_dataset_info(dataset)
    scenes = SCENES[dataset]()
    images = {}
    for n, scene in enumerate(scenes):
        image, label = draw(scene, info.palette, seed * 100_003 + n)
        WRITERS[dataset](root, scene, image, label, info)
        images[scene.id] = {"split": scene.split, "classes": sorted(set(scene.classes)),
                            "pixels": pixel_counts(label)}
    if dataset == "voc":
        write_voc_lists(root, scenes)
        write_replay_folder(root, dataset, replay_per_class, seed)
    manifest = {"format": FORMAT, "dataset": dataset, "seed": seed, "images": images}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def load_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest `fixture.json` of a fixture root (ValueError if it is not one)."""
    path = Path(root) / MANIFEST
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"'{path}' is not a {FORMAT} manifest")
    return data


def main(argv: list[str] | None = None) -> int:
    """`python -m ucd.data.fixtures --out DIR [--datasets voc,ade,cityscapes] [--seed S]`."""
    p = argparse.ArgumentParser(prog="python -m ucd.data.fixtures", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="writes OUT/<dataset>/ for each dataset")
    p.add_argument("--datasets", default=",".join(FIXTURES), help="comma-separated")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    bad = [d for d in names if d not in FIXTURES]
    if bad:
        p.error(f"no fixture for {', '.join(bad)}; fixtures: {', '.join(FIXTURES)}")
    for name in names:
        manifest = generate(name, Path(args.out) / name, seed=args.seed)
        n = {s: sum(v["split"] == s for v in manifest["images"].values()) for s in ("train", "val")}
        print(f"wrote the {name} fixture ({n['train']} train, {n['val']} val images) "
              f"to {Path(args.out) / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
