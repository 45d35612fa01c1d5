"""Tests of LwF's knowledge distillation on the old classes."""

import math

import pytest
import torch

from ucd.losses.kd import kd_loss


def test_hand_computed_value():
    # New logits (0, ln2, 5): only the 2 old channels count -> p = (1/3, 2/3).
    # Old logits (ln3, 0) -> q = (3/4, 1/4).
    # Per pixel: -(3/4 log 1/3 + 1/4 log 2/3), divided by n_old = 2 (MiB's class mean).
    new = torch.tensor([0.0, math.log(2), 5.0]).view(1, 3, 1, 1)
    old = torch.tensor([math.log(3), 0.0]).view(1, 2, 1, 1)
    plain = -(0.75 * math.log(1 / 3) + 0.25 * math.log(2 / 3))
    assert kd_loss(new, old, class_mean=False).item() == pytest.approx(plain, rel=1e-6)
    assert kd_loss(new, old).item() == pytest.approx(plain / 2, rel=1e-6)


def test_mean_over_pixels_and_extra_channels_ignored():
    g = torch.Generator().manual_seed(0)
    new = torch.randn(2, 5, 3, 3, generator=g)
    old = torch.randn(2, 3, 3, 3, generator=g)
    # independent formula in float64 with an explicit sum over classes
    p = torch.log_softmax(new[:, :3].double(), 1)
    q = torch.softmax(old.double(), 1)
    ref = -(q * p).sum(1).mean() / 3
    assert kd_loss(new, old).item() == pytest.approx(ref.item(), rel=1e-6)
    new2 = new.clone()
    new2[:, 3:] = 100.0  # the new classes' channels do not matter
    assert kd_loss(new2, old).item() == pytest.approx(ref.item(), rel=1e-6)


def test_temperature_scales_both_sides():
    g = torch.Generator().manual_seed(1)
    new = torch.randn(1, 4, 2, 2, generator=g)
    old = torch.randn(1, 3, 2, 2, generator=g)
    got = kd_loss(new, old, temperature=2.0).item()
    assert got == pytest.approx(kd_loss(new / 2, old / 2).item(), rel=1e-6)


def test_bad_temperature_is_named():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        kd_loss(torch.zeros(1, 3, 1, 1), torch.zeros(1, 2, 1, 1), temperature=0.0)
