"""Training and validation transforms (docs/protocol.md), on PIL image + uint8 label array.

Train: random resized crop to `crop_size` (area scale 0.5-2.0 of the image, aspect 3/4-4/3,
10 tries, else the central square: the peers' RandomResizedCrop; a box larger than the image
is rejected, so in practice the area scale is at most 1), horizontal flip (p = 0.5).
Val: resize the short side to `crop_size`, center crop. Where a crop exceeds the image it is
padded: image 0 after ImageNet normalisation (the mean colour), label 255.
Randomness comes from torch's generator (seeded per DataLoader worker).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MEAN_RGB = tuple(int(round(255 * m)) for m in IMAGENET_MEAN)
_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def normalize(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W), ImageNet-normalised."""
    t = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float().div_(255)
    return t.sub_(_MEAN).div_(_STD)


def denormalize(t: torch.Tensor) -> np.ndarray:
    """Inverse of `normalize`: float (3, H, W) -> uint8 (H, W, 3)."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    x = (t.detach().cpu().float() * std + mean).clamp(0, 1).mul(255).round()
    return x.byte().permute(1, 2, 0).numpy()


def _uniform(a: float, b: float) -> float:
    return a + (b - a) * float(torch.rand(()))


def _randint(lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi]."""
    return int(torch.randint(lo, hi + 1, ()))


def crop_box(
    w: int, h: int, scale: tuple[float, float], ratio: tuple[float, float]
) -> tuple[int, int, int, int]:
    """Random box (left, top, width, height) of area scale*w*h and aspect in `ratio`."""
    area = w * h
    for _ in range(10):
        a = _uniform(*scale) * area
        r = math.exp(_uniform(math.log(ratio[0]), math.log(ratio[1])))
        bw, bh = int(round(math.sqrt(a * r))), int(round(math.sqrt(a / r)))
        if 0 < bw <= w and 0 < bh <= h:
            return _randint(0, w - bw), _randint(0, h - bh), bw, bh
    s = min(w, h)
    return (w - s) // 2, (h - s) // 2, s, s


def pad_crop(
    img: np.ndarray, label: np.ndarray, top: int, left: int, size: int, fill: tuple | int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """size x size window at (top, left) (may exceed the image): outside = fill / 255."""
    h, w = label.shape
    out_i = np.empty((size, size) + img.shape[2:], img.dtype)
    out_i[...] = fill
    out_l = np.full((size, size), 255, label.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, h), min(left + size, w)
    if y1 > y0 and x1 > x0:
        out_i[y0 - top : y1 - top, x0 - left : x1 - left] = img[y0:y1, x0:x1]
        out_l[y0 - top : y1 - top, x0 - left : x1 - left] = label[y0:y1, x0:x1]
    return out_i, out_l


class TrainTransform:
    """Random resized crop + horizontal flip, then normalisation."""

    def __init__(
        self,
        crop_size: int,
        scale: tuple[float, float] = (0.5, 2.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
    ) -> None:
        self.crop_size, self.scale, self.ratio, self.flip = int(crop_size), scale, ratio, flip

    def geometry(self, img: Image.Image, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Augmented uint8 image (S, S, 3) and label (S, S)."""
        w, h = img.size
        left, top, bw, bh = crop_box(w, h, self.scale, self.ratio)
        box = (left, top, left + bw, top + bh)
        s = (self.crop_size, self.crop_size)
        im = np.asarray(img.resize(s, Image.BILINEAR, box=box))
        lab = np.asarray(Image.fromarray(label).resize(s, Image.NEAREST, box=box))
        if self.flip and float(torch.rand(())) < 0.5:
            im, lab = im[:, ::-1], lab[:, ::-1]
        return np.ascontiguousarray(im), np.ascontiguousarray(lab)

    def __call__(self, img: Image.Image, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        im, lab = self.geometry(img, label)
        return normalize(im), torch.from_numpy(lab.astype(np.int64))


class ValTransform:
    """Resize the short side to `crop_size`, center crop (padded), normalise."""

    def __init__(self, crop_size: int) -> None:
        self.crop_size = int(crop_size)

    def _resized(self, img: Image.Image, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w, h = img.size
        if min(w, h) != self.crop_size:
            f = self.crop_size / min(w, h)
            nw, nh = max(1, int(round(w * f))), max(1, int(round(h * f)))
            img = img.resize((nw, nh), Image.BILINEAR)
            label = np.asarray(Image.fromarray(label).resize((nw, nh), Image.NEAREST))
        return np.asarray(img), label

    def _window(self, label: np.ndarray) -> tuple[int, int]:
        h, w = label.shape
        return (h - self.crop_size) // 2, (w - self.crop_size) // 2

    def geometry(
        self, img: Image.Image, label: np.ndarray, fill: tuple | int = MEAN_RGB
    ) -> tuple[np.ndarray, np.ndarray]:
        """uint8 image and label after resize + center crop (padding: `fill` / 255)."""
        im, lab = self._resized(img, label)
        top, left = self._window(lab)
        return pad_crop(im, lab, top, left, self.crop_size, fill)

    def __call__(self, img: Image.Image, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        im, lab = self._resized(img, label)
        top, left = self._window(lab)
        x = normalize(im).permute(1, 2, 0).numpy()
        x, lab = pad_crop(x, lab, top, left, self.crop_size, 0.0)
        return torch.from_numpy(x).permute(2, 0, 1).contiguous(), torch.from_numpy(
            lab.astype(np.int64)
        )
