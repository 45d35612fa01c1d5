"""The digits backbone's pretraining (the ImageNet analogue): a tiny recipe runs, its weights
load into DeepLab-V3 through model.pretrained, and the recorded hash is the file's."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ucd.models import build_model
from ucd.models.pretrain import Recipe, digit_images, pretrain_backbone

TINY = Recipe(width=4, n_images=64, chunk=32, batch_size=16, seed=3)


def test_digit_images_are_single_digits_with_their_class():
    images, targets = digit_images(np.random.default_rng(0), 8, TINY.style)
    assert images.shape == (8, 3, 48, 48) and images.dtype == torch.float32
    assert targets.shape == (8,) and set(targets.tolist()) <= set(range(10))


def test_tiny_pretraining_writes_weights_that_load_and_are_reproducible(tmp_path):
    torch.set_num_threads(1)
    a = pretrain_backbone(tmp_path / "a.pt", TINY)
    pretrain_backbone(tmp_path / "b.pt", TINY)  # the same recipe again (zip names differ)
    assert a["sha256"] == hashlib.sha256((tmp_path / "a.pt").read_bytes()).hexdigest()
    assert a["iterations"] == 4  # 2 chunks x 2 batches
    wa, wb = (torch.load(tmp_path / f, weights_only=True) for f in ("a.pt", "b.pt"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # the same recipe, the same weights
    cfg = {"backbone": "resnet18", "width": 4, "head_channels": 8, "output_stride": 8,
           "norm": "abn", "pretrained": str(tmp_path / "a.pt")}
    model = build_model(cfg, [[0, 1, 2]])
    saved = torch.load(tmp_path / "a.pt", weights_only=True)
    for key, value in saved.items():
        assert torch.equal(model.body.state_dict()[key], value), key
