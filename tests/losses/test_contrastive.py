"""Tests of the chunked contrastive kernel against the dense autograd reference."""

import math

import pytest
import torch

from ucd.losses.contrastive import (
    _ChunkedContrast,
    chunk_rows,
    contrastive_loss,
    dense_contrastive_loss,
)
from ucd.methods.terms.contrastive import TEMPERATURE

D = torch.float64
TAU = TEMPERATURE  # the terms' default temperature (paper 4.2)


def _sets(seed, n=150, m=80, c=16, classes=6, t=7):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, dtype=D, requires_grad=True)
    y = torch.randint(0, classes, (n,), generator=g)
    y[0] = classes  # a class with a single anchor: no positive
    o = torch.randn(m, c, generator=g, dtype=D)
    yo = torch.randint(0, classes, (m,), generator=g)
    p = torch.softmax(torch.randn(n, t, generator=g, dtype=D), 1)
    po = torch.softmax(torch.randn(m, t, generator=g, dtype=D), 1)
    return z, y, o, yo, p, po


@pytest.mark.parametrize("chunk", [1, 3, 64, 149, 150, 10**6])
@pytest.mark.parametrize("mode", ["ucd", "cd", "new_only"])
def test_chunked_equals_dense(chunk, mode):
    z, y, o, yo, p, po = _sets(0)
    kw = {"temperature": TAU}
    if mode == "ucd":
        args, kw = (z, y, o, yo), {**kw, "anchor_probs": p, "other_probs": po}
    elif mode == "cd":
        args = (z, y, o, yo)
    else:
        args = (z, y)
    ref = dense_contrastive_loss(*args, **kw)
    got = contrastive_loss(*args, chunk_size=chunk, **kw)
    assert abs(got.item() - ref.item()) < 1e-12
    torch.testing.assert_close(
        torch.autograd.grad(got, z)[0], torch.autograd.grad(ref, z)[0], atol=1e-12, rtol=0
    )


def test_dense_reference_hand_computed():
    # anchors u=(1,0) class 0, v=(0,1) class 0, x=(1,1) class 1; one old (-1,0) of class 0
    z = torch.tensor([[1.0, 0], [0, 1], [1, 1]], dtype=D)
    y = torch.tensor([0, 0, 1])
    o = torch.tensor([[-1.0, 0]], dtype=D)
    yo = torch.tensor([0])
    r = 1 / math.sqrt(2)
    lu = -((0 - r) + (-1 - r)) / 2  # pos v (0), old (-1); neg x (r); tau 1
    lv = -((0 - r) + (0 - r)) / 2  # pos u (0), old (0); neg x (r)
    want = (lu + lv) / 2  # x has no positive: left out of the mean
    for fn in (dense_contrastive_loss, contrastive_loss):
        assert fn(z, y, o, yo, temperature=1.0).item() == pytest.approx(want, abs=1e-12)


def test_gradient_flows_into_anchors_as_contrast_members():
    # anchor 1 has no positive, so it is not an anchor, but it is a negative of anchor 0 and 2
    z = torch.tensor([[1.0, 0.2], [0.3, 1.0], [0.9, -0.4]], dtype=D, requires_grad=True)
    y = torch.tensor([0, 1, 0])
    loss = contrastive_loss(z, y, temperature=0.5)
    (g,) = torch.autograd.grad(loss, z)
    (g_ref,) = torch.autograd.grad(dense_contrastive_loss(z, y, temperature=0.5), z)
    assert g[1].abs().sum() > 0
    torch.testing.assert_close(g, g_ref, atol=1e-12, rtol=0)


def test_kernel_gradient_is_exact_without_normalisation():
    # The autograd Function differentiates w.r.t. the (already normalised) anchors; its
    # gradient must be exact there too, including the radial part that normalisation removes.
    z, y, o, yo, p, po = _sets(4, n=20, m=10, c=5, classes=3)
    z = torch.nn.functional.normalize(z.detach(), dim=1).requires_grad_()
    o = torch.nn.functional.normalize(o, dim=1)
    got = _ChunkedContrast.apply(z, y, o, yo, p, po, 2.0, 3, 1, True)
    q, yq, pq = torch.cat([z, o]), torch.cat([y, yo]), torch.cat([p, po])
    logits = 2.0 * z @ q.T
    same = y[:, None] == yq[None, :]
    pos = same.clone()
    pos[:, :20] &= ~torch.eye(20, dtype=torch.bool)
    lse = torch.logsumexp(logits.masked_fill(same, float("-inf")), 1, keepdim=True)
    valid = pos.any(1) & (~same).any(1)
    per = -((p @ pq.T) * pos * (logits - lse)).sum(1) / pos.sum(1).clamp(min=1)
    want = per[valid].mean()
    assert abs(got.item() - want.item()) < 1e-12
    torch.testing.assert_close(
        torch.autograd.grad(got, z)[0], torch.autograd.grad(want, z)[0], atol=1e-12, rtol=0
    )


def test_gradcheck_kernel():
    z, y, o, yo, p, po = _sets(1, n=12, m=6, c=3, classes=3)
    assert torch.autograd.gradcheck(
        lambda x: contrastive_loss(
            x, y, o, yo, temperature=0.3, anchor_probs=p, other_probs=po, chunk_size=5
        ),
        (z,),
    )


def test_empty_and_degenerate_sets():
    z = torch.zeros(0, 4, dtype=D, requires_grad=True)
    loss = contrastive_loss(z, torch.zeros(0, dtype=torch.long), temperature=TAU)
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    one_class = torch.randn(5, 4, dtype=D, requires_grad=True)  # positives but no negative
    loss = contrastive_loss(one_class, torch.zeros(5, dtype=torch.long), temperature=TAU)
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    assert torch.all(one_class.grad == 0)
    zeros = torch.zeros(5, dtype=torch.long)
    assert dense_contrastive_loss(one_class, zeros, temperature=TAU).item() == 0


def test_half_precision_is_computed_in_float32():
    z, y, o, yo, p, po = _sets(2)
    ref = contrastive_loss(z, y, o, yo, anchor_probs=p, other_probs=po, temperature=TAU)
    zh = z.detach().half().requires_grad_()
    got = contrastive_loss(zh, y, o.half(), yo, anchor_probs=p.half(), other_probs=po.half(),
                           temperature=TAU)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref.item(), rel=2e-3)
    got.backward()
    assert zh.grad.dtype == torch.float16 and torch.isfinite(zh.grad).all()


def test_autocast_does_not_lower_the_precision():
    z, y, o, yo, p, po = _sets(2)
    z32 = z.detach().float().requires_grad_()
    args = (z32, y, o.float(), yo)
    kw = {"anchor_probs": p.float(), "other_probs": po.float(), "temperature": TAU}
    ref = contrastive_loss(*args, **kw)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = contrastive_loss(*args, **kw)
    assert got.dtype == torch.float32 and got.item() == pytest.approx(ref.item(), rel=1e-6)


def test_chunk_rows_respects_budget():
    for k, itemsize, budget in [(1000, 4, 2**20), (48000, 4, 256 * 2**20), (10, 8, 10**9)]:
        rows = chunk_rows(k, itemsize, budget)
        assert rows >= 1 and rows * k * itemsize <= budget
        assert (rows + 1) * k * itemsize > budget
    assert chunk_rows(10**9, 4, 1) == 1
    with pytest.raises(ValueError, match="memory_budget must be a positive"):
        chunk_rows(10, 4, 0)


def test_kernel_bad_input_messages():
    z, y, o, yo, p, po = _sets(3, n=4, m=3)
    with pytest.raises(ValueError, match="anchors must be a float tensor"):
        contrastive_loss(z[None], y, temperature=TAU)
    with pytest.raises(ValueError, match="anchors labels must be an integer tensor"):
        contrastive_loss(z, y[:2], temperature=TAU)
    with pytest.raises(ValueError, match="non-negative class indices"):
        contrastive_loss(z, y - 10, temperature=TAU)
    with pytest.raises(ValueError, match="same channel count"):
        contrastive_loss(z, y, o[:, :3], yo, temperature=TAU)
    with pytest.raises(ValueError, match="given together"):
        contrastive_loss(z, y, o, yo, anchor_probs=p, temperature=TAU)
    with pytest.raises(ValueError, match="given together"):
        contrastive_loss(z, y, o, None, temperature=TAU)
    with pytest.raises(ValueError, match="same number of classes"):
        contrastive_loss(z, y, o, yo, anchor_probs=p, other_probs=po[:, :2], temperature=TAU)
