"""Tests of ILT's encoder feature distillation and the masked / cosine variant (ILT-dagger)."""

import pytest
import torch

from ucd.losses.feature_distill import feature_mse, masked_feature_distill


def test_feature_mse_hand_value():
    # new - old = 1 on half of the 8 elements, 3 on the other half: mean of squares = (1 + 9)/2
    new = torch.cat([torch.ones(1, 1, 2, 2), 3 * torch.ones(1, 1, 2, 2)], dim=1)
    assert feature_mse(new, torch.zeros(1, 2, 2, 2)).item() == pytest.approx(5.0)


def test_mask_keeps_background_and_old_pixels_only():
    # n_old = 3: labels 0 and 2 are kept, 4 (new) and 255 (ignore) are free.
    labels = torch.tensor([[[0, 2, 4, 255]]])
    old = torch.zeros(1, 2, 1, 4)
    new = torch.zeros(1, 2, 1, 4)
    new[0, :, 0, 2] = 10.0  # differs only on the new-class pixel
    new[0, :, 0, 3] = 10.0  # and the ignored pixel
    assert masked_feature_distill(new, old, labels, 3).item() == 0.0
    new[0, 0, 0, 1] = 2.0  # one channel of a kept pixel: (2^2 + 0) / 2 channels / 2 pixels
    assert masked_feature_distill(new, old, labels, 3).item() == pytest.approx(1.0)


def test_without_mask_equals_feature_mse():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    assert masked_feature_distill(a, b).item() == pytest.approx(feature_mse(a, b).item())


def test_cosine_hand_values():
    # pixel 1: orthogonal -> 1 - 0 = 1; pixel 2: parallel (different norms) -> 0. Mean 0.5.
    new = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    old = torch.tensor([[0.0, 2.0], [1.0, 0.0]]).view(1, 2, 1, 2)
    got = masked_feature_distill(new, old, distance="cosine").item()
    assert got == pytest.approx(0.5, abs=1e-6)


def test_nothing_kept_is_zero_with_gradient():
    new = torch.randn(1, 2, 1, 2, requires_grad=True)
    loss = masked_feature_distill(new, torch.zeros(1, 2, 1, 2), torch.tensor([[[5, 255]]]), 2)
    loss.backward()
    assert loss.item() == 0.0 and new.grad is not None


def test_bad_input_is_named():
    a = torch.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError, match="same shape"):
        feature_mse(a, torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="labels and n_old must be given together"):
        masked_feature_distill(a, a, torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="distance must be"):
        masked_feature_distill(a, a, distance="l1")
    with pytest.raises(ValueError, match="labels must have shape"):
        masked_feature_distill(a, a, torch.zeros(1, 4, 4, dtype=torch.long), 2)
