"""Backbone pretraining for the embedded benchmark: the analogue of ImageNet initialisation.

The paper starts every run from an ImageNet-pretrained ResNet-101. The embedded "digits"
benchmark has no ImageNet, so its small backbone is pretrained here as a multi-label classifier
("which digits are in this image?") on freshly composited images drawn from the *training*
glyphs only, then saved in torchvision's ResNet format and loaded through ``model.pretrained``
exactly like real ImageNet weights.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ucd.data.transforms import normalize
from ucd.models.resnet import ResNet

log = logging.getLogger("ucd.pretrain")


def _digit_images(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` composited images (normalised) and their 10-way digit-presence targets."""
    from sklearn.datasets import load_digits

    from ucd.data.digits import compose

    data = load_digits()
    glyphs, target = data.images.astype(np.float32), data.target
    idx = np.arange(len(glyphs) // 2)  # the training half, as the benchmark's train split
    pools = [idx[target[idx] == d] for d in range(10)]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    images, targets = [], torch.zeros(n, 10)
    for i in range(n):
        img, lab = compose(rng, glyphs, pools, size)
        images.append(normalize(img))
        present = [int(c) - 1 for c in np.unique(lab) if 1 <= c <= 10]
        targets[i, present] = 1.0
    return torch.stack(images), targets


def pretrain_backbone(
    out: str | Path,
    model_cfg: dict[str, Any],
    *,
    n_images: int = 3000,
    size: int = 64,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """Pretrain a ResNet body on digit presence and save its weights (torchvision key names)."""
    torch.manual_seed(seed)
    body = ResNet(
        model_cfg.get("backbone", "resnet18"),
        output_stride=int(model_cfg.get("output_stride", 16)),
        width=int(model_cfg.get("width", 64)),
        norm=model_cfg.get("norm", "auto"),
    )
    fc = nn.Linear(body.out_channels, 10)
    images, targets = _digit_images(n_images, size, seed)
    params = [*body.parameters(), *fc.parameters()]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)
    steps = epochs * (n_images // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: (1 - it / steps) ** 0.9)
    start, it = time.perf_counter(), 0
    for epoch in range(epochs):
        perm = torch.randperm(n_images)
        correct, seen, total = 0.0, 0, 0.0
        bar = tqdm(
            range(n_images // batch_size),
            desc=f"pretrain epoch {epoch + 1}/{epochs}",
            mininterval=2.0,
        )
        for b in bar:
            sel = perm[b * batch_size : (b + 1) * batch_size]
            x, y = images[sel], targets[sel]
            if torch.rand(()) < 0.5:
                x = x.flip(-1)
            logits = fc(body(x)[-1].mean((2, 3)))
            loss = F.binary_cross_entropy_with_logits(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            it += 1
            correct += float(((logits > 0) == (y > 0.5)).all(1).float().sum())
            seen += len(sel)
            total += loss.item()
            bar.set_postfix(loss=f"{total / (b + 1):.3f}", exact=f"{correct / seen:.2f}")
        log.info(
            "pretrain epoch %d: loss %.3f, exact-match %.3f",
            epoch + 1,
            total / max(b + 1, 1),
            correct / max(seen, 1),
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    torch.save(body.state_dict(), tmp)
    tmp.replace(out)
    return {
        "time_s": time.perf_counter() - start,
        "exact_match": correct / max(seen, 1),
        "iterations": it,
    }
