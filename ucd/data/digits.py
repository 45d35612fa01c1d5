"""Embedded "digits" benchmark: real handwritten digits composited onto textured backgrounds.

Source: scikit-learn's bundled `load_digits` (1,797 real 8x8 scans). Each class's glyphs are
shuffled once (a fixed seed) and split into three disjoint pools: train (65 %), replay (17.5 %:
used by neither training nor validation images, kept for generators of old-class images such
as RECALL's) and val (17.5 %). Each 64-px image has 1-3 digits (P = 0.3, 0.4, 0.3; a further
digit repeats a class already present with probability 0.3), 26-40 px tall, so that about half
of the images show two or more classes and most steps' images also show an old class, as in
VOC (the counts are written to stats.json: `ucd.data.stats`). Digits are scaled bilinearly,
thresholded and thickened by `Style.bold_px` for the mask, in a random colour that contrasts
with what lies under it, at a random position over a procedural background (smooth noise,
stripes or a gradient, coloured). A later digit may hide up to `Style.max_overlap` of earlier
ones (occlusion); one that finds no such place in `Style.place_tries` positions is left out.
Class of digit d is d + 1 ("zero".."nine"), background 0. Like VOC, a 1-pixel ring
around each digit is labelled 255 (ignore). Output is a VOC-like layout read by the VOC reader:
JPEGImages/<id>.png (lossless, so bytes are reproducible), SegmentationClass/<id>.png (palette
PNG), ImageSets/Segmentation/{train,val}.txt, stats.json, meta.json (written last; it records
the style and the glyph pools). Deterministic: the same seed and style give the same bytes.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ucd.data.tasks import get_dataset_info
from ucd.facts.progress import Progress

GENERATOR_VERSION = 4  # 4: 64-px images with several digits (VOC-like co-occurrence), stats.json
BOUNDARY_COLOUR = (224, 224, 192)  # VOC's colour for 255
POOL_FRACTIONS = {"train": 0.65, "replay": 0.175, "val": 0.175}  # share of each class's glyphs
POOL_SEED = 13  # the fixed shuffle of each class's glyphs before they are cut into pools
TEXTURES = ("noise", "stripes", "gradient")
MASK_THRESHOLD = 0.25  # glyph intensity (0..1 after bilinear scaling) labelled as the digit


@dataclass(frozen=True)
class Style:
    """What the generated images look like (the benchmark's difficulty knobs)."""

    size: int = 64  # image side, pixels
    digit_px: tuple[int, int] = (26, 40)  # digit height range, pixels
    bold_px: int = 2  # the glyph mask is thickened by this many pixels (a disk)
    n_digits_p: tuple[float, ...] = (0.3, 0.4, 0.3)  # P(1, 2, ... digits per image)
    same_class_p: float = 0.3  # P(a further digit repeats a class of the image)
    max_overlap: float = 0.2  # a later digit may cover at most this share of earlier ones
    place_tries: int = 30  # random positions tried for a further digit before it is dropped
    min_contrast: float = 100.0  # RGB distance of a digit's colour to the mean colour under it
    noise: float = 3.0  # std of the pixel noise added to the background
    textures: tuple[str, ...] = TEXTURES  # background kinds drawn from
    texture_contrast: float = 80.0  # largest per-channel difference of a texture's two colours

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Style:
        """A style from a mapping of its fields (lists become tuples); unknown keys refused."""
        data = dict(data or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"digits style: unknown keys {unknown}; valid: {sorted(names)}")
        style = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        style.check()
        return style

    def resized(self, size: int) -> Style:
        """This style for another image size (digits taller than the image shrink to fit)."""
        lo, hi = self.digit_px
        return Style.from_dict({**asdict(self), "size": size,
                                "digit_px": (min(lo, size), min(hi, size))})

    def check(self) -> None:
        """Raise ValueError naming the first value that cannot generate images."""
        lo, hi = self.digit_px
        if self.size < 32:
            raise ValueError(f"digits: size must be >= 32 px (got {self.size})")
        if not 8 <= lo <= hi <= self.size:
            raise ValueError(f"digits: digit_px must satisfy 8 <= lo <= hi <= size (got "
                             f"{self.digit_px} for size {self.size})")
        if self.bold_px < 0:
            raise ValueError(f"digits: bold_px must be >= 0 (got {self.bold_px})")
        unknown = sorted(set(self.textures) - set(TEXTURES))
        if not self.textures or unknown:
            raise ValueError(f"digits: textures must be a non-empty subset of {TEXTURES} "
                             f"(got {self.textures})")
        p = np.asarray(self.n_digits_p, float)
        if p.size == 0 or (p < 0).any() or abs(p.sum() - 1) > 1e-6:
            raise ValueError(f"digits: n_digits_p must be probabilities summing to 1 "
                             f"(got {self.n_digits_p})")


def label_palette(dataset: str = "digits") -> list[int]:
    """Flat 768-entry PNG palette: the dataset's colours, 255 = VOC boundary colour."""
    pal = [0] * 768
    for i, c in enumerate(get_dataset_info(dataset).palette):
        pal[3 * i : 3 * i + 3] = c
    pal[765:768] = BOUNDARY_COLOUR
    return pal


def glyph_pools(target: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Disjoint glyph indices per pool and class (sorted): each class's glyphs in a fixed
    random order (POOL_SEED, whatever the benchmark's seed), cut by POOL_FRACTIONS."""
    rng = np.random.default_rng(POOL_SEED)
    pools: dict[str, list[np.ndarray]] = {name: [] for name in POOL_FRACTIONS}
    for d in range(10):
        idx = rng.permutation(np.flatnonzero(target == d))
        cuts = np.round(np.cumsum(list(POOL_FRACTIONS.values())) * len(idx)).astype(int)
        for name, part in zip(POOL_FRACTIONS, np.split(idx, cuts[:-1])):
            pools[name].append(np.sort(part))
    return pools


def _resize_f(a: np.ndarray, w: int, h: int) -> np.ndarray:
    """Bilinear resize of a float array to (h, w)."""
    im = Image.fromarray(a.astype(np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.BILINEAR), dtype=np.float32)


def _background(rng: np.random.Generator, style: Style) -> np.ndarray:
    """Coloured procedural texture (H, W, 3) float in [0, 255]."""
    size = style.size
    kind = style.textures[int(rng.integers(len(style.textures)))]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == "noise":  # smooth noise
        r = int(rng.integers(3, 9))
        t = _resize_f(rng.random((r, r)), size, size)
    elif kind == "stripes":
        th, f, ph = rng.uniform(0, np.pi), rng.uniform(2, 8), rng.uniform(0, 2 * np.pi)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * f * (xx * np.cos(th) + yy * np.sin(th)) + ph)
    else:  # gradient
        th = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(th) + yy * np.sin(th)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    c1 = rng.uniform(0, 255, 3)
    if style.texture_contrast >= 255:
        c2 = rng.uniform(0, 255, 3)
    else:
        c2 = np.clip(c1 + rng.uniform(-style.texture_contrast, style.texture_contrast, 3), 0, 255)
    img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    img = img + rng.normal(0, style.noise, img.shape)
    return np.clip(img, 0, 255)


def _dilate(mask: np.ndarray, r: int = 1) -> np.ndarray:
    """Binary dilation by a (2r+1)-square (r = 1) or a disk of radius r (r > 1)."""
    if r <= 0:
        return mask
    p = np.pad(mask, r)
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if r > 1 and dy * dy + dx * dx > r * r:
                continue
            out |= p[r + dy : r + dy + h, r + dx : r + dx + w]
    return out


def _glyph_shape(
    rng: np.random.Generator, glyph: np.ndarray, style: Style
) -> tuple[np.ndarray, np.ndarray]:
    """Mask (h, w) bool and soft alpha (h, w) of one scaled, thickened glyph."""
    lo, hi = style.digit_px
    h = int(rng.integers(lo, hi + 1))
    w = max(8, int(round(h * rng.uniform(0.7, 1.0))))
    a = _resize_f(glyph, w, h)
    b = style.bold_px
    if b:  # thicken: dilate the mask, soften the alpha by the same amount
        a = np.pad(a, b)
        mask = _dilate(a > MASK_THRESHOLD, b)
        alpha = np.maximum(np.clip((a - MASK_THRESHOLD / 2) / MASK_THRESHOLD, 0, 1), mask)
        return mask, alpha.astype(np.float32)
    return a > MASK_THRESHOLD, np.clip((a - MASK_THRESHOLD / 2) / MASK_THRESHOLD, 0, 1)


def _place(rng: np.random.Generator, shape: np.ndarray, label: np.ndarray, first: bool,
           style: Style) -> tuple[int, int] | None:
    """Top-left corner for `shape` covering at most `style.max_overlap` of earlier digits (the
    first digit goes anywhere), or None after `style.place_tries` positions."""
    size = label.shape[0]
    h, w = shape.shape
    max_overlap = style.max_overlap
    for _ in range(style.place_tries):
        y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        covered = label[y0 : y0 + h, x0 : x0 + w][shape]
        if first or (covered != 0).mean() <= max_overlap:
            return y0, x0
    return None


def _paint(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray,
           alpha: np.ndarray, style: Style) -> np.ndarray:
    """`img` with a glyph painted in a random colour that contrasts with what lies under it."""
    under = img[mask].mean(0)
    for _ in range(20):
        col = rng.uniform(0, 255, 3)
        if np.linalg.norm(col - under) >= style.min_contrast:
            break
    return img * (1 - alpha[..., None]) + col * alpha[..., None]


def _draw(rng: np.random.Generator, glyph: np.ndarray, label: np.ndarray, first: bool,
          style: Style) -> tuple[np.ndarray, np.ndarray] | None:
    """Mask and alpha (H, W) of one glyph at a free position, or None where none was found."""
    size = style.size
    shape, a = _glyph_shape(rng, glyph / 16.0, style)
    if shape.shape[0] > size or shape.shape[1] > size:  # a bold glyph may outgrow the image
        shape, a = shape[:size, :size], a[:size, :size]
    corner = _place(rng, shape, label, first, style)
    if corner is None or not shape.any():
        return None
    y0, x0 = corner
    h, w = shape.shape
    m = np.zeros((size, size), bool)
    m[y0 : y0 + h, x0 : x0 + w] = shape
    alpha = np.zeros((size, size), np.float32)
    alpha[y0 : y0 + h, x0 : x0 + w] = a
    return m, alpha


def compose(
    rng: np.random.Generator, glyphs: np.ndarray, pools: list[np.ndarray], style: Style | int
) -> tuple[np.ndarray, np.ndarray]:
    """One image (H, W, 3) uint8 and its label (H, W) uint8 from digits of `pools[d]`
    (`style`: a Style, or an image size for the default style)."""
    style = style if isinstance(style, Style) else Style().resized(style)
    img = _background(rng, style)
    label = np.zeros((style.size, style.size), np.uint8)
    n = 1 + int(rng.choice(len(style.n_digits_p), p=style.n_digits_p))
    placed: list[int] = []
    for j in range(n):
        if placed and rng.random() < style.same_class_p:
            d = placed[int(rng.integers(len(placed)))]
        else:
            d = int(rng.integers(10))
        drawn = _draw(rng, glyphs[int(rng.choice(pools[d]))], label, j == 0, style)
        if drawn is None:
            continue
        m, alpha = drawn
        img = _paint(rng, img, m, alpha, style)
        label[_dilate(m) & ~m] = 255
        label[m] = d + 1
        placed.append(d)
    return np.round(img).astype(np.uint8), label


def generate(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    n_train: int = 2000,
    n_val: int = 300,
    size: int | None = None,
    style: Style | dict[str, Any] | None = None,
    progress: bool = True,
) -> None:
    """Write the digits benchmark under `root` (deterministic in `seed` and `style`)."""
    from sklearn.datasets import load_digits

    style = style if isinstance(style, Style) else Style.from_dict(style)
    if size is not None:
        style = style.resized(size)
    if n_train < 1 or n_val < 1:
        raise ValueError(f"digits: n_train and n_val must be >= 1 (got {n_train}, {n_val})")
    root = Path(root)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    data = load_digits()
    glyphs, target = data.images.astype(np.float32), data.target
    pools = glyph_pools(target)
    palette = label_palette("digits")
    streams = np.random.SeedSequence(seed).spawn(2)
    for (split, n), ss in zip((("train", n_train), ("val", n_val)), streams):
        rng = np.random.default_rng(ss)
        ids = [f"{split}_{i:05d}" for i in range(n)]
        for i in Progress(ids, desc=f"digits {split}", enabled=progress):
            img, lab = compose(rng, glyphs, pools[split], style)
            # compress_level 1: lossless like the default, several times faster to write
            Image.fromarray(img, "RGB").save(root / "JPEGImages" / f"{i}.png",
                                             compress_level=1)
            pim = Image.fromarray(lab, "P")
            pim.putpalette(palette)
            pim.save(root / "SegmentationClass" / f"{i}.png", compress_level=1)
        (root / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    meta = {
        "generator": "ucd.data.digits",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "n_train": n_train,
        "n_val": n_val,
        "size": style.size,
        "style": asdict(style),
        "boundary_ignore_px": 1,
        "glyph_pools": {k: [p.tolist() for p in v] for k, v in pools.items()},
    }
    from ucd.data.stats import dataset_stats

    stats = dataset_stats("digits", root)
    (root / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    (root / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
