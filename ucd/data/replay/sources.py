"""Where replayed images come from (RECALL's Source Block): one small interface, three sources.

A source returns, for one old class, ``n`` images: file paths (kept where they are) or images
(PIL or uint8 arrays, written into the replay set). Labels are never made here: they depend on
each method's old model and are made at training time (``ucd.losses.recall``).

- ``folder``: a directory per class name (the dataset's names, ``ucd/data/tasks.yaml``) holding
  images, e.g. RECALL's web-crawled variant (Flickr queried with the class name);
- ``generator``: any class-conditional generator, a callable ``module:function`` with
  ``generate(class_name, n, seed, **options) -> list of images`` (RECALL's GAN variant:
  BigGAN-deep conditioned on the ImageNet class matched to each class; weights supplied by the
  user and passed as ``weights=``);
- ``digits`` (the embedded benchmark): old-class digits drawn from glyphs that no training
  image uses, composited on the benchmark's own procedural textures.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
SOURCES = ("folder", "generator", "digits")
Picture = Path | Image.Image | np.ndarray


class ReplaySource(Protocol):
    """What the replay set builder asks of a source."""

    def describe(self) -> dict[str, Any]:
        """What the source is, recorded in the replay set's index (and shown in reports)."""

    def images(self, class_index: int, class_name: str, n: int, seed: int) -> list[Picture]:
        """``n`` images of one class, deterministic in ``seed``."""


def class_seed(seed: int, class_index: int) -> int:
    """A seed per (source seed, class), so classes do not share random streams."""
    return int(np.random.SeedSequence([seed, class_index]).generate_state(1)[0])


class FolderSource:
    """A directory per class name holding that class's images (taken in file-name order)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"replay folder '{self.root}' does not exist: it must hold one directory per "
                "class name (e.g. <root>/aeroplane/*.jpg)"
            )

    def describe(self) -> dict[str, Any]:
        return {"source": "folder", "root": str(self.root.resolve())}

    def images(self, class_index: int, class_name: str, n: int, seed: int) -> list[Picture]:
        folder = self.root / class_name
        if not folder.is_dir():
            raise FileNotFoundError(
                f"replay folder has no directory for class {class_name!r} (class {class_index}): "
                f"expected '{folder}' holding its images"
            )
        files = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < n:
            raise ValueError(
                f"replay folder '{folder}' holds {len(files)} images of class {class_name!r}, "
                f"fewer than the {n} per class asked (recall_ce.images_per_class): add images "
                "or lower images_per_class"
            )
        return [p.resolve() for p in files[:n]]


def load_callable(spec: str) -> Any:
    """The function named by 'module:function' (a clear error when it cannot be imported)."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"generator {spec!r} must read 'module:function'")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"generator {spec!r} cannot be loaded: {err}") from err
    if not callable(fn):
        raise ValueError(f"generator {spec!r} is not callable")
    return fn


def _as_picture(item: Any, where: str) -> Picture:
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    arr = np.asarray(item)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{where}: expected a PIL image or a uint8 array (H, W, 3), got "
                         f"{type(item).__name__} {getattr(arr, 'dtype', '')} "
                         f"{getattr(arr, 'shape', '')}")
    return arr


class GeneratorSource:
    """A class-conditional generator: ``generate(class_name, n, seed, **options)``."""

    def __init__(self, spec: str, weights: str | None = None) -> None:
        self.spec, self.weights = spec, weights
        self.fn = load_callable(spec)

    def describe(self) -> dict[str, Any]:
        return {"source": "generator", "generator": self.spec, "weights": self.weights}

    def images(self, class_index: int, class_name: str, n: int, seed: int) -> list[Picture]:
        options = {"weights": self.weights} if self.weights else {}
        out = list(self.fn(class_name, n, class_seed(seed, class_index), **options))
        if len(out) != n:
            raise ValueError(f"generator {self.spec!r} returned {len(out)} images of "
                             f"{class_name!r}, not the {n} asked")
        return [_as_picture(x, f"generator {self.spec!r}, class {class_name!r}") for x in out]


def replay_glyph_pool(root: str | Path) -> list[np.ndarray]:
    """Per digit 0-9, the scikit-learn glyphs replayed digits are drawn from: the ``replay``
    pool recorded in the benchmark's meta.json (``glyph_pools``, generator >= 3); for older
    benchmarks (no replay pool) the validation half, which no training image uses.

    The one place that chooses the replay glyphs.
    """
    from sklearn.datasets import load_digits

    meta = json.loads((Path(root) / "meta.json").read_text())
    pools = meta.get("glyph_pools") or {}
    if "replay" in pools:
        return [np.asarray(p, dtype=int) for p in pools["replay"]]
    target = load_digits().target
    held_out = np.arange(len(target) // 2, len(target))
    return [held_out[target[held_out] == d] for d in range(10)]


class DigitsSource:
    """Digits of one class from the replay glyph pool on the benchmark's textures (class c is
    digit c - 1); image size as the benchmark's."""

    def __init__(self, root: str | Path) -> None:
        from sklearn.datasets import load_digits

        self.root = Path(root)
        meta_file = self.root / "meta.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"digits replay: '{meta_file}' not found; generate the "
                                    "benchmark first (`ucd data generate digits`)")
        self.size = int(json.loads(meta_file.read_text())["size"])
        self.pools = replay_glyph_pool(self.root)
        self.glyphs = load_digits().images.astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"source": "digits", "root": str(self.root), "glyphs": "replay pool"}

    def images(self, class_index: int, class_name: str, n: int, seed: int) -> list[Picture]:
        from ucd.data.digits import compose

        if not 1 <= class_index <= 10:
            raise ValueError(f"digits replay: class {class_index} is not a digit class (1-10)")
        rng = np.random.default_rng(class_seed(seed, class_index))
        pools = [self.pools[class_index - 1]] * 10  # every digit drawn is of this class
        return [compose(rng, self.glyphs, pools, self.size)[0] for _ in range(n)]


def make_source(kind: str, *, root: str | None = None, generator: str | None = None,
                weights: str | None = None) -> ReplaySource:
    """A source by name, with the options it needs (a clear error naming what is missing)."""
    if kind not in SOURCES:
        raise ValueError(f"replay source {kind!r} is not one of {', '.join(SOURCES)}")
    if kind == "generator":
        if not generator:
            raise ValueError("replay source 'generator' needs a generator 'module:function'")
        return GeneratorSource(generator, weights)
    if not root:
        raise ValueError(f"replay source {kind!r} needs a root directory")
    return FolderSource(root) if kind == "folder" else DigitsSource(root)
