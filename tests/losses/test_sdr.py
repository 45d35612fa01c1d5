"""Tests of SDR's prototype, contrastive and sparsity losses."""

import math

import pytest
import torch

from ucd.losses.sdr import (
    attraction_loss,
    prototype_matching_loss,
    repulsion_loss,
    sparsity_loss,
    update_prototypes,
)


def _feats(rows):
    """(1, C, 1, W) features from a list of per-pixel vectors."""
    return torch.tensor(rows, dtype=torch.float32).t().reshape(1, len(rows[0]), 1, len(rows))


def test_update_prototypes_hand_values():
    # pixels (1,0), (3,0) of class 1 and (0,5) of class 2; 255 skipped; background skipped.
    f = _feats([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0], [9.0, 9.0], [7.0, 7.0]])
    labels = torch.tensor([[[1, 1, 2, 255, 0]]])
    protos, counts = update_prototypes(
        f, labels, torch.zeros(3, 2), torch.zeros(3), skip_background=True
    )
    assert protos.tolist() == [[0.0, 0.0], [2.0, 0.0], [0.0, 5.0]]
    assert counts.tolist() == [0.0, 2.0, 1.0]
    # a second batch with one pixel (5, 0) of class 1: (2 * (2, 0) + (5, 0)) / 3 = (3, 0)
    protos, counts = update_prototypes(_feats([[5.0, 0.0]]), torch.tensor([[[1]]]), protos, counts)
    assert protos[1].tolist() == [3.0, 0.0] and counts[1].item() == 3.0


def test_update_prototypes_batch_of_two_matches_per_pixel_loop():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 3, 2, 2, generator=g)
    labels = torch.randint(0, 3, (2, 2, 2), generator=g)
    protos, _ = update_prototypes(f, labels, torch.zeros(3, 3), torch.zeros(3))
    for c in range(3):
        vecs = [
            f[b, :, y, x]
            for b in range(2)
            for y in range(2)
            for x in range(2)
            if labels[b, y, x] == c
        ]
        if vecs:
            assert torch.allclose(protos[c], torch.stack(vecs).mean(0), atol=1e-6)


def test_prototype_matching_hand_value():
    # labels: 0, 0, 3 (new), 0; old prediction: 1, 2, 1, 0.
    # class 1: pixel 0 only (pixel 2 is new) -> mean (2, 2) vs prototype (1, 1): MSE 1
    # class 2: pixel 1 -> (0, 4) vs (0, 0): MSE (0 + 16) / 2 = 8; pixel 3 predicts background.
    f = _feats([[2.0, 2.0], [0.0, 4.0], [50.0, 50.0], [9.0, 9.0]])
    labels = torch.tensor([[[0, 0, 3, 0]]])
    old_pred = torch.tensor([[[1, 2, 1, 0]]])
    protos = torch.tensor([[5.0, 5.0], [1.0, 1.0], [0.0, 0.0]])
    got = prototype_matching_loss(f, labels, old_pred, protos)
    assert got.item() == pytest.approx((1.0 + 8.0) / 2)


def test_attraction_hand_value():
    # class 0: features (1,1), (3,3) vs prototype (2,2): each off by 1 per channel -> MSE 1
    # class 1: (0,0) vs (0,2): (0 + 4) / 2 = 2; ignored pixel skipped. Mean over classes 1.5.
    f = _feats([[1.0, 1.0], [3.0, 3.0], [0.0, 0.0], [100.0, 100.0]])
    labels = torch.tensor([[[0, 0, 1, 255]]])
    protos = torch.tensor([[2.0, 2.0], [0.0, 2.0]])
    assert attraction_loss(f, labels, protos).item() == pytest.approx(1.5)
    assert attraction_loss(f, labels, protos, skip_background=True).item() == pytest.approx(2.0)


def test_repulsion_hand_value():
    # class means (0, 0) and (3, 4): distance 5 -> 1/5; a single class -> 0.
    f = _feats([[-1.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    labels = torch.tensor([[[0, 0, 1]]])
    assert repulsion_loss(f, labels).item() == pytest.approx(0.2)
    assert repulsion_loss(f, torch.tensor([[[0, 0, 255]]])).item() == 0.0


def test_repulsion_three_classes_matches_pairwise_mean():
    f = _feats([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    labels = torch.tensor([[[0, 1, 2]]])
    d = [5.0, 1.0, math.dist((3, 4), (0, 1))]
    assert repulsion_loss(f, labels).item() == pytest.approx(sum(1 / x for x in d) / 3, rel=1e-6)


def test_sparsity_hand_value():
    # one class, max activation 2: pixel a (1,0) -> (0.5, 0): (e^0.5 + e^0) / 0.5;
    # pixel b (2,2) -> (1, 1): 2e / 2 = e. An all-zero pixel and an ignored pixel are left out.
    f = _feats([[1.0, 0.0], [2.0, 2.0], [0.0, 0.0], [40.0, 0.0]])
    labels = torch.tensor([[[1, 1, 1, 255]]])
    expected = ((math.exp(0.5) + 1) / 0.5 + math.e) / 2
    assert sparsity_loss(f, labels).item() == pytest.approx(expected, rel=1e-6)


def test_bad_input_is_named():
    f = torch.zeros(1, 2, 1, 2)
    with pytest.raises(ValueError, match="prototypes have 3 channels, features have 2"):
        attraction_loss(f, torch.zeros(1, 1, 2, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="without a prototype row"):
        attraction_loss(f, torch.full((1, 1, 2), 4), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="old_pred must have shape"):
        prototype_matching_loss(
            f,
            torch.zeros(1, 1, 2, dtype=torch.long),
            torch.zeros(1, 2, 2, dtype=torch.long),
            torch.zeros(2, 2),
        )
