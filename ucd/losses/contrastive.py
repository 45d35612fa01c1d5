"""Memory-efficient supervised contrastive kernel shared by UCD and its ablation variants.

One kernel serves every contrastive loss of the project (UCD Eq. 11, CD Eq. 7, the Table 6
pixel/segment contrastive, the Table 7 variants). Given anchor features ``z`` (the new model's,
they are also the new-model contrast set) with class ``y`` and an optional second contrast set
``o`` (the frozen old model's features, no gradient) with class ``yo``, for each anchor ``a``:

- positives G(a): every other anchor ``j != a`` with ``y_j == y_a`` and every ``o_j`` with
  ``yo_j == y_a``; negatives H(a): every anchor and every ``o_j`` of another class;
- ``L_lc(a, g) = cos(a, g)/tau - log sum_{n in H(a)} exp(cos(a, n)/tau)`` (Eq. 8: the
  denominator holds the negatives only);
- ``loss_a = -1/|G(a)| * sum_{g in G(a)} sigma(a, g) * L_lc(a, g)`` with
  ``sigma(a, g) = P_a . P_g`` when class-probability rows are given (Eq. 10), else 1;
- the result is the mean of ``loss_a`` over the anchors that have at least one positive and one
  negative; with no such anchor it is 0, still attached to the graph.

The similarity matrix is never materialised in full. The positive terms are bilinear in
(P_a, f_a) and (P_g, f_g), so their sums are computed per class from (T x C) aggregates; only the
negatives' log-sum-exp needs anchor x contrast similarities, computed for chunks of anchor rows
(chunk size from a memory budget). Each row is complete within its chunk, so the exact gradient
is accumulated in the same pass (anchor slot and contrast slot: new features get gradient both
as anchors and as contrast members) and handed to autograd by a custom Function: no
recomputation, three (chunk x (N + M) x C) products per chunk as in a dense forward+backward.
Peak extra memory is O(chunk x (N + M)); the result does not depend on the chunk size beyond
float rounding. ``dense_contrastive_loss`` is the straightforward O(N x (N + M)) autograd
version, kept as the reference for tests and ``benchmarks/ucd_memory.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "chunk_rows",
    "contrastive_loss",
    "dense_contrastive_loss",
]

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""Bytes of chunk-sized temporaries the kernel may hold at once (default 256 MiB)."""

# Per element of a chunk: one similarity matrix, exponentiated in place.
_BUFFERS_PER_ELEMENT = 1


def chunk_rows(num_contrast: int, itemsize: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Anchor rows per chunk so that the chunk's temporaries fit ``memory_budget`` bytes."""
    if memory_budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    per_row = max(num_contrast, 1) * _BUFFERS_PER_ELEMENT * itemsize
    return max(1, memory_budget // per_row)


def _check_set(name: str, feats: Tensor, labels: Tensor, probs: Tensor | None) -> None:
    if feats.dim() != 2 or not feats.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor (n, C), got {feats.dtype} {tuple(feats.shape)}"
        )
    if labels.dim() != 1 or labels.shape[0] != feats.shape[0] or labels.is_floating_point():
        raise ValueError(
            f"{name} labels must be an integer tensor ({feats.shape[0]},), "
            f"got {labels.dtype} {tuple(labels.shape)}"
        )
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(f"{name} labels must be non-negative class indices")
    if probs is not None and (probs.dim() != 2 or probs.shape[0] != feats.shape[0]):
        raise ValueError(
            f"{name} probs must be (n, T) with n = {feats.shape[0]}, got {tuple(probs.shape)}"
        )


def _prepare(
    anchors: Tensor,
    anchor_labels: Tensor,
    others: Tensor | None,
    other_labels: Tensor | None,
    anchor_probs: Tensor | None,
    other_probs: Tensor | None,
    temperature: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
    """Validate inputs and return normalised (z, y, o, yo, p, po) in a common float dtype."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if (others is None) != (other_labels is None):
        raise ValueError("others and other_labels must be given together")
    if others is None and other_probs is not None:
        raise ValueError("other_probs given without others")
    if others is not None and (anchor_probs is None) != (other_probs is None):
        raise ValueError("anchor_probs and other_probs must be given together (or neither)")
    if others is None:
        others = anchors.new_zeros((0, anchors.shape[-1] if anchors.dim() == 2 else 0))
        other_labels = anchor_labels.new_zeros((0,))
        if anchor_probs is not None:
            other_probs = anchor_probs.new_zeros((0, anchor_probs.shape[-1]))
    _check_set("anchors", anchors, anchor_labels, anchor_probs)
    _check_set("others", others, other_labels, other_probs)
    if others.shape[1] != anchors.shape[1]:
        raise ValueError(
            f"anchors and others must have the same channel count, "
            f"got {anchors.shape[1]} and {others.shape[1]}"
        )
    if anchor_probs is not None and anchor_probs.shape[1] != other_probs.shape[1]:
        raise ValueError("anchor_probs and other_probs must have the same number of classes")
    dtype = torch.promote_types(anchors.dtype, torch.float32)
    z = F.normalize(anchors.to(dtype), dim=1)
    o = F.normalize(others.detach().to(dtype), dim=1)
    p = po = None
    if anchor_probs is not None:
        p = anchor_probs.detach().to(dtype)
        po = other_probs.detach().to(dtype)
    return z, anchor_labels.long(), o, other_labels.long(), p, po


@dataclass
class _Sets:
    """Anchors and contrast features sorted by class, with each class's column ranges."""

    z: Tensor  # normalised anchors (n, C), sorted by class
    y: Tensor
    p: Tensor  # their probabilities (n, T) (ones when sigma = 1)
    q: Tensor  # every contrast feature: the anchors, then the old features (n + m, C)
    pq: Tensor
    perm: Tensor  # the sort of the anchors (to put the gradient back in input order)
    cols: dict[int, tuple[slice, slice]]  # class -> its rows among anchors / old features in q
    s: Tensor  # s_a = 1 / (|G(a)| |valid|), 0 for anchors without positive or negative
    valid: Tensor


def _sorted_sets(z: Tensor, y: Tensor, o: Tensor, yo: Tensor, p: Tensor | None,
                 po: Tensor | None) -> _Sets | None:
    """Sort both sets by class and weigh the anchors; None when no anchor counts."""
    n, m = z.shape[0], o.shape[0]
    if p is None:  # sigma = 1: one "probability" column of ones
        p, po = z.new_ones((n, 1)), z.new_ones((m, 1))
    y, perm = torch.sort(y, stable=True)
    yo, perm_o = torch.sort(yo, stable=True)
    z, p, o, po = z[perm], p[perm], o[perm_o], po[perm_o]
    num = int(torch.cat([y, yo]).max()) + 1
    cn, co = torch.bincount(y, minlength=num), torch.bincount(yo, minlength=num)
    sn, so = torch.cumsum(cn, 0) - cn, n + torch.cumsum(co, 0) - co  # column starts in q
    n_pos = cn + co - 1  # per anchor class: the other new members plus every old member
    valid = ((n_pos > 0) & (n + m - cn - co > 0))[y]
    n_valid = int(valid.sum())
    if n_valid == 0:
        return None
    s = torch.where(valid, 1.0 / (n_pos[y].clamp(min=1).to(z.dtype) * n_valid), 0.0)
    cols = {
        c: (slice(a0, a0 + na), slice(b0, b0 + nb))
        for c, a0, na, b0, nb in zip(*(t.tolist() for t in (torch.arange(num), sn, cn, so, co)))
        if na > 0
    }
    return _Sets(z, y, p, torch.cat([z, o]), torch.cat([p, po]), perm, cols, s, valid)


def _positive_part(t: _Sets, inv_tau: float, grad: Tensor | None) -> tuple[Tensor, Tensor]:
    """-sum_a s_a z_a . U_a / tau and W_a, per class: U_a = p_a @ sum_g (p_g outer q_g) -
    |p_a|^2 z_a (a itself); adds its gradient to ``grad``."""
    z, p, q, pq, s = t.z, t.p, t.q, t.pq, t.s
    pp = (p * p).sum(1)
    u, w = torch.empty_like(z), torch.empty_like(s)
    for a, b in t.cols.values():
        sq = pq[a].T @ q[a] + pq[b].T @ q[b]
        u[a] = p[a] @ sq
        w[a] = p[a] @ (pq[a].sum(0) + pq[b].sum(0))
        if grad is not None:  # contrast slot: new member j gets sum_a s_a sigma_aj z_a / tau
            grad[a] -= inv_tau * (p[a] @ ((s[a, None] * p[a]).T @ z[a]))
    u -= pp[:, None] * z
    w -= pp
    if grad is not None:
        grad += inv_tau * (s * pp)[:, None] * z  # a is not its own positive
        grad -= inv_tau * s[:, None] * u  # anchor slot
    return -inv_tau * (s * (z * u).sum(1)).sum(), w


def _negative_part(t: _Sets, w: Tensor, inv_tau: float, chunk: int,
                   grad: Tensor | None) -> Tensor:
    """sum_a s_a W_a LSE_a over the negatives, ``chunk`` anchors at a time; adds its gradient
    (d/d logit_aj = s_a W_a softmax_aj) to ``grad``."""
    z, q, n = t.z, t.q, t.z.shape[0]
    total = z.new_zeros(())
    rows = t.valid.nonzero().squeeze(1)
    for start in range(0, rows.numel(), chunk):
        ia = rows[start : start + chunk]
        za = z[ia] * inv_tau
        e = za @ q.T
        classes, counts = torch.unique_consecutive(t.y[ia], return_counts=True)
        r0 = 0
        for c, k in zip(classes.tolist(), counts.tolist()):
            a, b = t.cols[c]
            e[r0 : r0 + k, a] = float("-inf")  # same class: not a negative
            e[r0 : r0 + k, b] = float("-inf")
            r0 += k
        top = e.amax(1, keepdim=True)
        e.sub_(top).exp_()
        row_sum = e.sum(1)
        coef = t.s[ia] * w[ia]
        total = total + (coef * (top.squeeze(1) + row_sum.log())).sum()
        if grad is not None:
            r = (coef / row_sum)[:, None]
            grad.index_add_(0, ia, (e @ q).mul_(r * inv_tau))
            grad.addmm_(e[:, :n].T, za.mul_(r))
        del e
    return total


def _chunked_value_and_grad(
    z: Tensor,
    y: Tensor,
    o: Tensor,
    yo: Tensor,
    p: Tensor | None,
    po: Tensor | None,
    inv_tau: float,
    chunk: int | None,
    memory_budget: int,
    needs_grad: bool,
) -> tuple[Tensor, Tensor | None]:
    """Loss value and its exact gradient w.r.t. the normalised anchors ``z``.

    With ``s_a = 1 / (|G(a)| |valid|)``, ``W_a = sum_g sigma_ag``, ``U_a = sum_g sigma_ag q_g``:
    loss = sum_a s_a (W_a LSE_a - z_a . U_a / tau). The positive part is computed per class
    (sigma_ag = p_a . p_g is bilinear, so sums over a class are (T x C) aggregates); only the
    negatives' log-sum-exp needs anchor x contrast similarities, done ``chunk`` rows at a time.
    Both sets are sorted by class so that a class's columns are two contiguous ranges.
    """
    grad = torch.zeros_like(z) if needs_grad else None
    sets = _sorted_sets(z, y, o, yo, p, po) if z.shape[0] else None
    if sets is None:
        return z.new_zeros(()), grad
    positive, w = _positive_part(sets, inv_tau, grad)
    if chunk is None:
        chunk = chunk_rows(z.shape[0] + o.shape[0], z.element_size(), memory_budget)
    total = positive + _negative_part(sets, w, inv_tau, chunk, grad)
    if grad is not None:
        grad = torch.empty_like(grad).index_copy_(0, sets.perm, grad)  # back to input order
    return total, grad


class _ChunkedContrast(torch.autograd.Function):
    """Scalar loss whose gradient w.r.t. the normalised anchors is computed during forward."""

    @staticmethod
    def forward(ctx, z, y, o, yo, p, po, inv_tau, chunk, memory_budget, needs_grad):  # noqa: D102
        loss, grad = _chunked_value_and_grad(
            z, y, o, yo, p, po, inv_tau, chunk, memory_budget, needs_grad
        )
        ctx.save_for_backward(grad if grad is not None else torch.zeros_like(z))
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):  # noqa: D102
        (grad,) = ctx.saved_tensors
        return (grad * grad_output,) + (None,) * 9


def contrastive_loss(
    anchors: Tensor,
    anchor_labels: Tensor,
    others: Tensor | None = None,
    other_labels: Tensor | None = None,
    *,
    temperature: float,
    anchor_probs: Tensor | None = None,
    other_probs: Tensor | None = None,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Tensor:
    """Chunked supervised contrast of ``anchors`` (n, C) against themselves and ``others`` (m, C).

    See the module docstring for the exact definition. ``others`` get no gradient. With
    ``anchor_probs`` (n, T) and ``other_probs`` (m, T) each positive pair is weighted by the dot
    product of the two rows (UCD's sigma). ``chunk_size`` (anchor rows per chunk) overrides the
    size derived from ``memory_budget`` (bytes). Float16/bfloat16 inputs are computed in float32,
    autocast is disabled inside.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size}")
    with torch.autocast(anchors.device.type, enabled=False):
        z, y, o, yo, p, po = _prepare(
            anchors, anchor_labels, others, other_labels, anchor_probs, other_probs, temperature
        )
    needs_grad = torch.is_grad_enabled() and z.requires_grad
    # An empty selection still returns a graph-attached 0 (its gradient is all zeros).
    with torch.autocast(z.device.type, enabled=False):  # keep the kernel in z's dtype under AMP
        return _ChunkedContrast.apply(
            z, y, o, yo, p, po, 1.0 / temperature, chunk_size, memory_budget, needs_grad
        )


def dense_contrastive_loss(
    anchors: Tensor,
    anchor_labels: Tensor,
    others: Tensor | None = None,
    other_labels: Tensor | None = None,
    *,
    temperature: float,
    anchor_probs: Tensor | None = None,
    other_probs: Tensor | None = None,
) -> Tensor:
    """Reference: the same loss as ``contrastive_loss`` with full (n, n + m) matrices and autograd.

    Memory grows as n x (n + m); use it for tests and benchmarks, not for training.
    """
    z, y, o, yo, p, po = _prepare(
        anchors, anchor_labels, others, other_labels, anchor_probs, other_probs, temperature
    )
    n = z.shape[0]
    q = torch.cat([z, o])
    yq = torch.cat([y, yo])
    logits = z @ q.T / temperature
    same = y[:, None] == yq[None, :]
    itself = torch.zeros_like(same)
    itself[:, :n] = torch.eye(n, dtype=torch.bool, device=z.device)
    pos = same & ~itself
    neg = ~same
    has_neg = neg.any(1, keepdim=True)
    neg_logits = torch.where(has_neg, logits.masked_fill(same, float("-inf")), 0.0)
    lse = torch.logsumexp(neg_logits, dim=1, keepdim=True)
    sigma = p @ torch.cat([p, po]).T if p is not None else torch.ones_like(logits)
    n_pos = pos.sum(1)
    per_anchor = -(sigma * pos * (logits - lse)).sum(1) / n_pos.clamp(min=1)
    valid = (n_pos > 0) & has_neg.squeeze(1)
    if not bool(valid.any()):
        return anchors.sum() * 0
    return per_anchor[valid].mean()
