"""Tests of LwF-MC's sigmoid distillation and multi-label BCE."""

import math

import pytest
import torch

from ucd.losses.lwf_mc import lwf_mc_loss, multilabel_bce


def _bce(x, t):
    s = 1 / (1 + math.exp(-x))
    return -(t * math.log(s) + (1 - t) * math.log(1 - s))


def test_distillation_hand_value():
    # A logit of 0 has sigmoid 1/2: its BCE is log 2 whatever the target.
    # 2 old channels -> 2 log 2 per pixel, whatever the old logits; the new channel is unused.
    new = torch.zeros(1, 3, 2, 2)
    new[:, 2] = 7.0
    old = torch.randn(1, 2, 2, 2)
    assert lwf_mc_loss(new, old).item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_distillation_matches_loop():
    g = torch.Generator().manual_seed(0)
    new = torch.randn(2, 4, 2, 3, generator=g)
    old = torch.randn(2, 3, 2, 3, generator=g)
    total = 0.0
    for i in range(2):
        for y in range(2):
            for x in range(3):
                for c in range(3):
                    t = 1 / (1 + math.exp(-float(old[i, c, y, x])))
                    total += _bce(float(new[i, c, y, x]), t)
    assert lwf_mc_loss(new, old).item() == pytest.approx(total / 12, rel=1e-5)


def test_multilabel_bce_hand_value_and_ignore():
    # Zero logits: every channel costs log 2 -> 3 log 2 per valid pixel. The ignored pixel has
    # large logits that would change the value if it were counted.
    logits = torch.zeros(1, 3, 1, 3)
    logits[0, :, 0, 2] = 50.0
    labels = torch.tensor([[[0, 2, 255]]])
    assert multilabel_bce(logits, labels).item() == pytest.approx(3 * math.log(2), rel=1e-6)


def test_multilabel_bce_matches_loop():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 3, 2, 2, generator=g)
    labels = torch.tensor([[[0, 1], [2, 255]]])
    total = 0.0
    for y, x in ((0, 0), (0, 1), (1, 0)):
        total += sum(_bce(float(logits[0, c, y, x]), float(c == labels[0, y, x])) for c in range(3))
    assert multilabel_bce(logits, labels).item() == pytest.approx(total / 3, rel=1e-5)


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match="class 5 but only 3 classes"):
        multilabel_bce(torch.zeros(1, 3, 1, 1), torch.tensor([[[5]]]))
