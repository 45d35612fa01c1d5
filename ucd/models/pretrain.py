"""Backbone pretraining for the embedded benchmark: the analogue of ImageNet initialisation.

The paper starts every run from an ImageNet-pretrained ResNet-101: a classifier trained on
another dataset whose images also show the benchmark's objects. The digits benchmark has no
ImageNet, so its small backbone is pretrained here as a 10-way classifier of single digits
("which digit is this?"), on freshly composited images (every batch new: nothing to memorise)
drawn from the *train* glyph pool only, with the benchmark's style. The weights are saved in
torchvision's ResNet format and loaded through ``model.pretrained`` exactly like ImageNet
weights; the packaged ones are listed, with their SHA-256 and recipe, in ``weights.yaml``.

    python -m ucd.models.pretrain --width 12 --out ucd/models/weights/digits-resnet18-w12.pt

(5-6 CPU-minutes on one thread; Adam, not the benchmark's SGD, because from scratch SGD stays
at chance level for the first ~1,000 iterations on these textures).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ucd.data.transforms import normalize
from ucd.models.resnet import ResNet

log = logging.getLogger("ucd.pretrain")


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the pretrained weights."""

    backbone: str = "resnet18"
    width: int = 16
    output_stride: int = 8
    # harder than the benchmark (smaller digits, full-contrast textures, more noise): another
    # "dataset", as ImageNet is to VOC, and features that transfer better (measured)
    style: dict[str, Any] = field(default_factory=lambda: {
        "size": 48, "digit_px": [24, 40], "bold_px": 2, "texture_contrast": 255, "noise": 6})
    n_images: int = 100_000  # fresh single-digit images, generated chunk by chunk
    chunk: int = 4000
    batch_size: int = 32
    lr: float = 0.002  # Adam, cosine decay to 0
    seed: int = 0


def digit_images(rng: np.random.Generator, n: int, style: dict[str, Any]):
    """``n`` single-digit images (normalised) of the train glyph pool and their digit (0..9)."""
    from sklearn.datasets import load_digits

    from ucd.data.digits import Style, compose, glyph_pools

    data = load_digits()
    glyphs, pools = data.images.astype(np.float32), glyph_pools(data.target)["train"]
    one = Style.from_dict({**style, "n_digits_p": [1.0]})
    images, targets = [], []
    for _ in range(n):
        img, lab = compose(rng, glyphs, pools, one)
        digit = [int(c) - 1 for c in np.unique(lab) if 1 <= c <= 10]
        images.append(normalize(img))
        targets.append(digit[0])
    return torch.stack(images), torch.tensor(targets)


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pretrain_backbone(out: str | Path, recipe: Recipe = Recipe()) -> dict[str, Any]:
    """Pretrain a ResNet body as a digit classifier; save its weights (torchvision names)."""
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    body = ResNet(recipe.backbone, output_stride=recipe.output_stride, width=recipe.width)
    fc = nn.Linear(body.out_channels, 10)
    params = [*body.parameters(), *fc.parameters()]
    opt = torch.optim.Adam(params, lr=recipe.lr)
    per_chunk = recipe.chunk // recipe.batch_size
    n_chunks = max(1, recipe.n_images // recipe.chunk)
    total, it, start = n_chunks * per_chunk, 0, time.process_time()
    for c in range(n_chunks):
        images, targets = digit_images(rng, recipe.chunk, recipe.style)
        correct = 0
        for b in range(per_chunk):
            x = images[b * recipe.batch_size : (b + 1) * recipe.batch_size]
            y = targets[b * recipe.batch_size : (b + 1) * recipe.batch_size]
            for group in opt.param_groups:
                group["lr"] = recipe.lr * 0.5 * (1 + np.cos(np.pi * it / total))
            logits = fc(body(x)[-1].mean((2, 3)))
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
            correct += int((logits.argmax(1) == y).sum())
        acc = correct / (per_chunk * recipe.batch_size)
        log.info("pretrain chunk %d/%d: accuracy %.3f, %.0f CPU-s", c + 1, n_chunks, acc,
                 time.process_time() - start)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    torch.save(body.state_dict(), tmp)
    tmp.replace(out)
    return {"recipe": asdict(recipe), "sha256": sha256(out), "last_chunk_accuracy": acc,
            "cpu_s": round(time.process_time() - start), "iterations": it}


def main(argv: list[str] | None = None) -> int:
    import json

    p = argparse.ArgumentParser(description="pretrain the digits backbone (ImageNet analogue)")
    p.add_argument("--out", required=True, help="where to write the weights (.pt)")
    p.add_argument("--n-images", type=int, default=Recipe.n_images)
    p.add_argument("--width", type=int, default=Recipe.width)
    p.add_argument("--seed", type=int, default=Recipe.seed)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    print(json.dumps(pretrain_backbone(args.out, Recipe(n_images=args.n_images, seed=args.seed,
                                                           width=args.width)),
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
