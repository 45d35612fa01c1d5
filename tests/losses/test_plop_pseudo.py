"""Tests of PLOP's entropy thresholds, pseudo-labels, nu and the re-weighted CE (Eq. 19)."""

import math

import pytest
import torch

from ucd.losses.plop_pseudo import (
    EntropyHistogram,
    entropy_thresholds,
    normalized_entropy,
    plop_pseudo_labels,
    pseudo_ce,
)


def test_normalized_entropy_extremes_and_hand_value():
    uniform = torch.full((1, 4, 1, 1), 0.25)
    onehot = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 4, 1, 1)
    assert normalized_entropy(uniform).item() == pytest.approx(1.0, abs=1e-6)
    assert normalized_entropy(onehot).item() == pytest.approx(0.0, abs=1e-6)
    # p = (1/2, 1/4, 1/4, 0): H = 1.5 log 2, divided by log 4 = 2 log 2 -> 0.75
    p = torch.tensor([0.5, 0.25, 0.25, 0.0]).view(1, 4, 1, 1)
    assert normalized_entropy(p).item() == pytest.approx(0.75, abs=1e-6)


def test_histogram_median_hand_values():
    hist = EntropyHistogram(n_old=2, bins=4)
    # class 0: counts (2, 2, 0, 0): half = 2 is reached at the end of bin 0 -> median 1/4
    # class 1: counts (1, 0, 3, 0): half = 2 falls in bin 2, 1 already below, 1/3 of the bin
    #          -> median (2 + 1/3) / 4
    hist.counts = torch.tensor([2, 2, 0, 0, 1, 0, 3, 0])
    med = hist.medians()
    assert med[0].item() == pytest.approx(0.25)
    assert med[1].item() == pytest.approx((2 + 1 / 3) / 4)
    assert hist.thresholds(min_threshold=0.3)[0].item() == pytest.approx(0.3)
    assert EntropyHistogram(3).thresholds(min_threshold=0.001).tolist() == pytest.approx(
        [0.001] * 3
    )


def test_histogram_median_close_to_exact_median():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, 16, 16, generator=g) * 2
    labels = torch.zeros(4, 16, 16, dtype=torch.long)
    labels[0, :4] = 255  # ignored pixels are not counted
    labels[1, :4] = 5  # nor are non-background pixels
    thr = entropy_thresholds(
        [(logits[:2], labels[:2]), (logits[2:], labels[2:])], 3, bins=1000, min_threshold=0.0
    )
    probs = torch.softmax(logits, 1)
    ent, pred = normalized_entropy(probs), probs.argmax(1)
    keep = labels == 0
    for c in range(3):
        vals = ent[keep & (pred == c)]
        exact = vals.sort().values[(len(vals) - 1) // 2 : len(vals) // 2 + 1].mean()
        assert thr[c].item() == pytest.approx(exact.item(), abs=2e-3)


def test_pseudo_labels_and_nu_hand_example():
    # n_old = 3 old channels, current labels of 5 pixels: 0, 0, 0, 3 (new class), 255.
    #  pixel 0: old logits (0, 10, 0) -> confident class 1 -> pseudo-label 1
    #  pixel 1: uniform -> entropy 1 >= threshold -> ignored (255)
    #  pixel 2: (10, 0, 0) -> confident background -> stays 0 (accepted)
    #  pixel 3: keeps its ground truth 3; pixel 4 stays 255 (both although the old model is
    #  confident there)
    # nu = accepted / background pixels = 2 / 3
    old = torch.tensor(
        [[0.0, 0.0, 10.0, 0.0, 0.0], [10.0, 0.0, 0.0, 0.0, 10.0], [0.0, 0.0, 0.0, 10.0, 0.0]]
    ).view(1, 3, 1, 5)
    labels = torch.tensor([[[0, 0, 0, 3, 255]]])
    pseudo, nu = plop_pseudo_labels(labels, old, torch.full((3,), 0.5))
    assert pseudo.tolist() == [[[1, 255, 0, 3, 255]]]
    assert nu.tolist() == pytest.approx([2 / 3])


def test_nu_is_one_without_background_and_threshold_is_per_class():
    old = torch.tensor([[0.0, 0.0], [3.0, 3.0]]).view(1, 2, 1, 2)  # both predict class 1
    labels = torch.tensor([[[4, 255]]])
    _, nu = plop_pseudo_labels(labels, old, torch.tensor([0.5, 0.5]))
    assert nu.tolist() == [1.0]
    # same confident class-1 pixel: accepted with threshold 0.9 for class 1, not with 0.01
    p1 = torch.softmax(torch.tensor([0.0, 3.0]), 0)
    h = float(-(p1 * p1.log()).sum() / math.log(2))  # ~0.28
    labels = torch.tensor([[[0, 0]]])
    a, _ = plop_pseudo_labels(labels, old, torch.tensor([0.0, h + 0.01]))
    b, _ = plop_pseudo_labels(labels, old, torch.tensor([1.0, h - 0.01]))
    assert a.tolist() == [[[1, 1]]] and b.tolist() == [[[255, 255]]]


def test_pseudo_ce_hand_value():
    # Zero logits over T = 4: CE = log 4 for each valid pixel; 2 valid of 4 pixels, nu = 1/2:
    # mean over all 4 pixels = 0.5 * 2 * log 4 / 4 = log(4) / 4
    logits = torch.zeros(1, 4, 1, 4, requires_grad=True)
    pseudo = torch.tensor([[[1, 255, 3, 255]]])
    loss = pseudo_ce(logits, pseudo, torch.tensor([0.5]))
    assert loss.item() == pytest.approx(math.log(4) / 4, rel=1e-6)
    loss.backward()
    assert logits.grad[0, :, 0, 1].abs().sum() == 0  # ignored pixel: no gradient
    # nu per image
    two = torch.zeros(2, 4, 1, 4)
    got = pseudo_ce(two, pseudo.repeat(2, 1, 1), torch.tensor([1.0, 0.0])).item()
    assert got == pytest.approx(2 * math.log(4) / 8, rel=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="n_old must be an int >= 2"):
        EntropyHistogram(1)
    with pytest.raises(ValueError, match=r"thresholds must be a tensor of shape \(3,\)"):
        plop_pseudo_labels(
            torch.zeros(1, 1, 1, dtype=torch.long), torch.zeros(1, 3, 1, 1), torch.zeros(2)
        )
    hist = EntropyHistogram(3)
    with pytest.raises(ValueError, match="expected n_old=3"):
        hist.update(torch.zeros(1, 4, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"nu must be a scalar or of shape \(1,\)"):
        pseudo_ce(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long), torch.ones(3))
