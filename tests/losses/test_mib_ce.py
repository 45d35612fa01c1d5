"""Tests of MiB's unbiased cross-entropy against hand arithmetic and a float64 loop."""

import math

import pytest
import torch

from ucd.losses.mib_ce import unbiased_cross_entropy, unbiased_log_probs


def _loop_reference(logits, labels, n_old, ignore=255):
    """Independent float64 loop: p~(0) = sum_{c < n_old} p(c), p~(c) = p(c) for c >= n_old."""
    logits = logits.double()
    b, t, h, w = logits.shape
    total, count = 0.0, 0
    for i in range(b):
        for y in range(h):
            for x in range(w):
                lab = int(labels[i, y, x])
                if lab == ignore:
                    continue
                e = [math.exp(float(logits[i, c, y, x])) for c in range(t)]
                z = sum(e)
                p = sum(e[:n_old]) / z if lab < n_old else e[lab] / z
                total -= math.log(p)
                count += 1
    return total / count


def test_hand_computed_value():
    # 4 pixels, T = 3 channels, n_old = 2 (background + class 1 are "old").
    #  A: logits (0, 0, 0), label 0   -> p~(0) = (1 + 1) / 3 = 2/3      -> -log(2/3) = log 1.5
    #  B: logits (0, ln2, ln3), label 2 -> p(2) = 3 / (1 + 2 + 3) = 1/2 -> log 2
    #  C: logits (0, 0, 0), label 1 (old class counts as background) -> log 1.5
    #  D: logits (9, -9, 4), label 255 -> ignored
    # mean over the 3 valid pixels = (2 log 1.5 + log 2) / 3
    logits = torch.tensor(
        [[0.0, 0.0, 0.0, 9.0], [0.0, math.log(2), 0.0, -9.0], [0.0, math.log(3), 0.0, 4.0]]
    ).view(1, 3, 1, 4)
    labels = torch.tensor([[[0, 2, 1, 255]]])
    expected = (2 * math.log(1.5) + math.log(2)) / 3
    got = unbiased_cross_entropy(logits, labels, n_old=2)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_matches_loop_reference_on_random_input():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 3, 4, generator=g) * 3
    labels = torch.randint(0, 6, (2, 3, 4), generator=g)
    labels[0, 0, :2] = 255
    for n_old in (1, 3, 5):
        got = unbiased_cross_entropy(logits, labels, n_old=n_old)
        assert got.item() == pytest.approx(_loop_reference(logits, labels, n_old), rel=1e-5)


def test_n_old_one_is_plain_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 5, 5, generator=g)
    labels = torch.randint(0, 4, (2, 5, 5), generator=g)
    labels[1, 2] = 255
    ref = torch.nn.functional.cross_entropy(logits, labels, ignore_index=255)
    assert unbiased_cross_entropy(logits, labels, 1).item() == pytest.approx(ref.item(), rel=1e-6)


def test_log_probs_are_a_distribution():
    logits = torch.randn(1, 5, 2, 2)
    lp = unbiased_log_probs(logits, 3)
    assert lp.shape == (1, 3, 2, 2)
    assert torch.allclose(lp.exp().sum(1), torch.ones(1, 2, 2), atol=1e-6)


def test_all_ignored_gives_zero_with_gradient():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = unbiased_cross_entropy(logits, torch.full((1, 2, 2), 255), 2)
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None


@pytest.mark.parametrize(
    ("n_old", "labels", "message"),
    [
        (0, torch.zeros(1, 2, 2, dtype=torch.long), "n_old must be in"),
        (4, torch.zeros(1, 2, 2, dtype=torch.long), "n_old must be in"),
        (2, torch.full((1, 2, 2), 3), "class 3 but only 3 classes"),
        (2, torch.full((1, 2, 2), -1), "negative values"),
        (2, torch.zeros(1, 2, 3, dtype=torch.long), "labels must have shape"),
        (2, torch.zeros(1, 2, 2), "labels must be an integer tensor"),
    ],
)
def test_bad_input_is_named(n_old, labels, message):
    with pytest.raises((ValueError, TypeError), match=message):
        unbiased_cross_entropy(torch.zeros(1, 3, 2, 2), labels, n_old)


def test_half_precision_input_is_computed_in_float32():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 4, 3, 3, generator=g) * 4
    labels = torch.randint(0, 4, (1, 3, 3), generator=g)
    full = unbiased_cross_entropy(logits, labels, 2)
    half = unbiased_cross_entropy(logits.half(), labels, 2)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=1e-2)
