"""Tests of MiB's unbiased knowledge distillation."""

import math

import pytest
import torch

from ucd.losses.kd import kd_loss
from ucd.losses.mib_kd import unbiased_kd


def _loop_reference(new, old, alpha=1.0, class_mean=True):
    """float64 loop of Eq. 15-16: p^(0) = p(0) + sum_{c >= n_old} p(c)."""
    new, old = new.double(), old.double()
    b, t, h, w = new.shape
    n_old = old.shape[1]
    total = 0.0
    for i in range(b):
        for y in range(h):
            for x in range(w):
                e = [math.exp(float(new[i, c, y, x])) for c in range(t)]
                z = sum(e)
                p_hat = [(e[0] + sum(e[n_old:])) / z] + [e[c] / z for c in range(1, n_old)]
                eo = [math.exp(alpha * float(old[i, c, y, x])) for c in range(n_old)]
                q = [v / sum(eo) for v in eo]
                s = -sum(q[c] * math.log(p_hat[c]) for c in range(n_old))
                total += s / n_old if class_mean else s
    return total / (b * h * w)


def test_hand_computed_value():
    # One pixel, new model T = 3: logits (0, ln2, ln3) -> p = (1/6, 2/6, 3/6); n_old = 2.
    # p^(0) = p(0) + p(2) = 4/6 = 2/3, p^(1) = 1/3. Old logits (0, 0) -> q = (1/2, 1/2).
    # Eq. 15 per pixel: -(1/2 log 2/3 + 1/2 log 1/3); MiB divides by n_old = 2.
    new = torch.tensor([0.0, math.log(2), math.log(3)]).view(1, 3, 1, 1)
    old = torch.zeros(1, 2, 1, 1)
    plain = -(0.5 * math.log(2 / 3) + 0.5 * math.log(1 / 3))
    assert unbiased_kd(new, old, class_mean=False).item() == pytest.approx(plain, rel=1e-6)
    assert unbiased_kd(new, old).item() == pytest.approx(plain / 2, rel=1e-6)


def test_matches_loop_reference():
    g = torch.Generator().manual_seed(0)
    new = torch.randn(2, 7, 3, 2, generator=g) * 2
    old = torch.randn(2, 4, 3, 2, generator=g) * 2
    for alpha, mean in ((1.0, True), (0.5, False)):
        got = unbiased_kd(new, old, alpha=alpha, class_mean=mean).item()
        assert got == pytest.approx(_loop_reference(new, old, alpha, mean), rel=1e-5)


def test_without_new_classes_equals_plain_kd():
    g = torch.Generator().manual_seed(2)
    new = torch.randn(2, 4, 3, 3, generator=g)
    old = torch.randn(2, 4, 3, 3, generator=g)
    assert unbiased_kd(new, old).item() == pytest.approx(kd_loss(new, old).item(), rel=1e-6)


def test_gradient_flows_to_new_logits_only():
    new = torch.randn(1, 3, 2, 2, requires_grad=True)
    old = torch.randn(1, 2, 2, 2)
    unbiased_kd(new, old).backward()
    assert new.grad is not None and torch.isfinite(new.grad).all()


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="fewer than old_logits"):
        unbiased_kd(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="spatial size"):
        unbiased_kd(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 4, 4))
    with pytest.raises(TypeError, match="new_logits must be a floating-point tensor"):
        unbiased_kd(torch.zeros(1, 3, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, 2))
