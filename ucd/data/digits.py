"""Embedded "digits" benchmark: real handwritten digits composited onto textured backgrounds.

Source: scikit-learn's bundled `load_digits` (1,797 real 8x8 scans); the first half feeds the
training images, the second half the validation images. Each image has 1-3 digits (a further
digit repeats a class already present with probability 0.5, so many images hold one class, as
in VOC), scaled bilinearly to 28-44 px, thresholded for the mask, in random colours at random
positions over a procedural background (smooth noise, stripes or a gradient, coloured). Class
of digit d is d + 1 ("zero".."nine"), background 0. Like VOC, a 1-pixel ring around each digit
is labelled 255 (ignore), so the ignore paths of the pipeline are exercised. Output is a
VOC-like layout read by the VOC reader: JPEGImages/<id>.png (lossless, so bytes are
reproducible), SegmentationClass/<id>.png (palette PNG), ImageSets/Segmentation/{train,val}.txt,
meta.json (written last). Deterministic: the same seed gives the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ucd.data.tasks import get_dataset_info

GENERATOR_VERSION = 2  # 2: bigger, bolder digits (28-44 px, 1-3 per image)
BOUNDARY_COLOUR = (224, 224, 192)  # VOC's colour for 255
N_DIGITS_P = (0.5, 0.3, 0.2, 0.0)  # P(1..4 digits per image)
SAME_CLASS_P = 0.5  # P(a further digit repeats a class of the image): VOC-like co-occurrence
DIGIT_PX = (28, 44)  # digit height range, pixels (at most the image size)
MASK_THRESHOLD = 0.25  # glyph intensity (0..1 after bilinear scaling) labelled as the digit


def label_palette(dataset: str = "digits") -> list[int]:
    """Flat 768-entry PNG palette: the dataset's colours, 255 = VOC boundary colour."""
    pal = [0] * 768
    for i, c in enumerate(get_dataset_info(dataset).palette):
        pal[3 * i : 3 * i + 3] = c
    pal[765:768] = BOUNDARY_COLOUR
    return pal


def _resize_f(a: np.ndarray, w: int, h: int) -> np.ndarray:
    """Bilinear resize of a float array to (h, w)."""
    im = Image.fromarray(a.astype(np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.BILINEAR), dtype=np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Coloured procedural texture (H, W, 3) float in [0, 255]."""
    kind = int(rng.integers(3))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 0:  # smooth noise
        r = int(rng.integers(3, 9))
        t = _resize_f(rng.random((r, r)), size, size)
    elif kind == 1:  # stripes
        th, f, ph = rng.uniform(0, np.pi), rng.uniform(2, 8), rng.uniform(0, 2 * np.pi)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * f * (xx * np.cos(th) + yy * np.sin(th)) + ph)
    else:  # gradient
        th = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(th) + yy * np.sin(th)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    img = img + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation."""
    p = np.pad(mask, 1)
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            out |= p[dy : dy + h, dx : dx + w]
    return out


def compose(
    rng: np.random.Generator, glyphs: np.ndarray, pools: list[np.ndarray], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """One image (H, W, 3) uint8 and its label (H, W) uint8 from digits of `pools[d]`."""
    img = _background(rng, size)
    label = np.zeros((size, size), np.uint8)
    n = 1 + int(rng.choice(4, p=N_DIGITS_P))
    placed: list[int] = []
    for j in range(n):
        if placed and rng.random() < SAME_CLASS_P:
            d = placed[int(rng.integers(len(placed)))]
        else:
            d = int(rng.integers(10))
        glyph = glyphs[int(rng.choice(pools[d]))] / 16.0
        h = int(rng.integers(DIGIT_PX[0], min(DIGIT_PX[1], size) + 1))
        w = max(8, int(round(h * rng.uniform(0.7, 1.0))))
        a = _resize_f(glyph, w, h)
        for _ in range(10):
            y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            m = np.zeros((size, size), bool)
            m[y0 : y0 + h, x0 : x0 + w] = a > MASK_THRESHOLD
            if j == 0 or (label[m] != 0).mean() <= 0.3:
                break
        else:
            continue
        if not m.any():
            continue
        alpha = np.zeros((size, size), np.float32)
        alpha[y0 : y0 + h, x0 : x0 + w] = np.clip((a - MASK_THRESHOLD / 2) / MASK_THRESHOLD, 0, 1)
        under = img[m].mean(0)
        for _ in range(20):
            col = rng.uniform(0, 255, 3)
            if np.linalg.norm(col - under) >= 100:
                break
        img = img * (1 - alpha[..., None]) + col * alpha[..., None]
        label[_dilate(m) & ~m] = 255
        label[m] = d + 1
        placed.append(d)
    return np.round(img).astype(np.uint8), label


def generate(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    n_train: int = 1200,
    n_val: int = 300,
    size: int = 64,
    progress: bool = True,
) -> None:
    """Write the digits benchmark under `root` (deterministic in `seed`)."""
    from sklearn.datasets import load_digits

    if size < 32:
        raise ValueError(f"digits: size must be >= 32 px (got {size})")
    if n_train < 1 or n_val < 1:
        raise ValueError(f"digits: n_train and n_val must be >= 1 (got {n_train}, {n_val})")
    root = Path(root)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    data = load_digits()
    glyphs, target = data.images.astype(np.float32), data.target
    half = len(glyphs) // 2
    halves = {"train": np.arange(half), "val": np.arange(half, len(glyphs))}
    palette = label_palette("digits")
    streams = np.random.SeedSequence(seed).spawn(2)
    for (split, n), ss in zip((("train", n_train), ("val", n_val)), streams):
        rng = np.random.default_rng(ss)
        idx = halves[split]
        pools = [idx[target[idx] == d] for d in range(10)]
        ids = [f"{split}_{i:05d}" for i in range(n)]
        for i in tqdm(ids, desc=f"digits {split}", disable=not progress):
            img, lab = compose(rng, glyphs, pools, size)
            Image.fromarray(img, "RGB").save(root / "JPEGImages" / f"{i}.png")
            pim = Image.fromarray(lab, "P")
            pim.putpalette(palette)
            pim.save(root / "SegmentationClass" / f"{i}.png")
        (root / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    meta = {
        "generator": "ucd.data.digits",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "n_train": n_train,
        "n_val": n_val,
        "size": size,
        "boundary_ignore_px": 1,
    }
    (root / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
