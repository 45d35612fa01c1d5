"""Tests of PLOP's Local POD against hand values and an explicit per-window loop."""

import math

import pytest
import torch

from ucd.losses.pod import fold_new_logits, local_pod, pod_embedding


def _loop_embedding(x, scales, square=True):
    """float64 loop: for each scale and window, mean over width per (c, row), then over height."""
    x = x.double()
    if square:
        x = x**2
    b, c, h, w = x.shape
    out = []
    for i in range(b):
        vals = []
        for s in scales:
            hk, wk = h // s, w // s
            for wi in range(s):
                for wj in range(s):
                    win = x[i, :, wi * hk : (wi + 1) * hk, wj * wk : (wj + 1) * wk]
                    for ch in range(c):
                        for r in range(hk):
                            vals.append(sum(float(v) for v in win[ch, r]) / wk)
                    for ch in range(c):
                        for col in range(wk):
                            vals.append(sum(float(v) for v in win[ch, :, col]) / hk)
        out.append(vals)
    return torch.tensor(out, dtype=torch.float64)


def test_hand_computed_single_window():
    # x = [[1, 2], [3, 4]], one channel, scale 1. Squared: [[1, 4], [9, 16]].
    # width-pooled rows: (1+4)/2 = 2.5, (9+16)/2 = 12.5; height-pooled columns: 5, 10.
    # Old features 0 -> distance sqrt(2.5^2 + 12.5^2 + 5^2 + 10^2) = sqrt(287.5).
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    zero = torch.zeros_like(x)
    assert local_pod([x], [zero], scales=(1,)).item() == pytest.approx(math.sqrt(287.5))
    # without squaring: rows 1.5, 3.5; columns 2, 3 -> sqrt(2.25 + 12.25 + 4 + 9) = sqrt(27.5)
    got = local_pod([x], [zero], scales=(1,), square=False).item()
    assert got == pytest.approx(math.sqrt(27.5))


def test_embedding_matches_loop_including_non_square_and_remainder():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 6, generator=g)  # 9 rows: a remainder row at scale 2 and 4
    got = pod_embedding(x, (1, 2, 4)).double()
    ref = _loop_embedding(x, (1, 2, 4))
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_layers_weights_and_batch_mean():
    g = torch.Generator().manual_seed(1)
    new = [torch.randn(2, 2, 8, 8, generator=g), torch.randn(2, 3, 4, 4, generator=g)]
    old = [torch.randn(2, 2, 8, 8, generator=g), torch.randn(2, 3, 4, 4, generator=g)]
    weights = [0.01, 0.0005]
    d = []
    for a, b in zip(new, old, strict=True):
        diff = _loop_embedding(a, (1, 2, 4)) - _loop_embedding(b, (1, 2, 4))
        d.append(diff.norm(dim=1).mean().item())
    expected = (weights[0] * d[0] + weights[1] * d[1]) / 2
    got = local_pod(new, old, weights=weights).item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert local_pod(new, new).item() == 0.0


def test_normalize_option_bounds_distance():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(1, 2, 4, 4, generator=g), torch.randn(1, 2, 4, 4, generator=g)
    assert local_pod([a], [b * 10], normalize=True).item() <= 2.0 + 1e-6


def test_fold_new_logits_hand_values():
    # T = 4, n_old = 2: background = z0 + z2 + z3, old class 1 kept.
    z = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1)
    assert fold_new_logits(z, 2).flatten().tolist() == [8.0, 2.0]


def test_bad_input_is_named():
    a = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match="shapes differ"):
        local_pod([a], [torch.zeros(1, 3, 4, 4)])
    with pytest.raises(ValueError, match="same length"):
        local_pod([a, a], [a])
    with pytest.raises(ValueError, match="too small for scale 4"):
        local_pod([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 3, 3)])
    with pytest.raises(ValueError, match="weights has 1 entries for 2 layers"):
        local_pod([a, a], [a, a], weights=[1.0])
    with pytest.raises(ValueError, match="scales must be"):
        local_pod([a], [a], scales=(0,))
