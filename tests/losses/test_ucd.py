"""Tests of ucd_loss (Eq. 1-11), its Table 7 variants and the Table 6 pixel/segment contrast.

Expected values come from the arithmetic written out by hand or from naive per-anchor Python
loops over pixels that follow the paper's set definitions literally (float64, autograd for the
gradients), independent of the chunked kernel.
"""

import math

import pytest
import torch

from ucd.losses import pixel_contrastive_loss, segment_contrastive_loss, ucd_loss
from ucd.methods.terms.contrastive import TEMPERATURE

D = torch.float64
TAU = TEMPERATURE  # the terms' default temperature (paper 4.2)


# ----------------------------------------------------------------------------- naive references
def _vec(t, p):
    return t[p[0], :, p[1], p[2]]


def _cos(u, v):
    return (u @ v) / (u.norm() * v.norm())


def _naive_contrast(anchors, olds, tau, sigma):
    """anchors/olds: lists of (key, feature, class); mean over anchors of Eq. 11's bracket."""
    terms = []
    for ka, fa, ca in anchors:
        pos = [(k, f) for k, f, c in anchors if k != ka and c == ca]
        pos += [(k, f) for k, f, c in olds if c == ca]
        neg = [f for _, f, c in anchors if c != ca] + [f for _, f, c in olds if c != ca]
        if not pos or not neg:
            continue
        denom = sum(torch.exp(_cos(fa, f) / tau) for f in neg)
        acc = 0.0
        for kg, fg in pos:
            acc = acc + sigma(ka, kg) * torch.log(torch.exp(_cos(fa, fg) / tau) / denom)
        terms.append(-acc / len(pos))
    return sum(terms) / len(terms) if terms else None


def naive_ucd(f, fo, lab, probs, new_classes, tau, uncertainty=True, bg=False, old_new=False):
    b, _, h, w = f.shape
    t_old = probs.shape[1]
    t_k = t_old + len(new_classes)
    esm, pbar = {}, {}
    for p in [(n, i, j) for n in range(b) for i in range(h) for j in range(w)]:
        label = int(lab[p])
        if label == 255:
            continue
        if label == 0:
            pr = [float(probs[p[0], t, p[1], p[2]]) for t in range(t_old)]
            esm[p] = max(range(t_old), key=lambda t, pr=pr: pr[t])
            pbar[p] = pr + [0.0] * (t_k - t_old)
        else:
            esm[p] = label
            pbar[p] = [1.0 if t == label else 0.0 for t in range(t_k)]
    r = [p for p in esm if esm[p] != 0 or bg]
    s = [p for p in r if esm[p] not in new_classes or old_new]

    def sigma(pa, pg):
        return sum(x * y for x, y in zip(pbar[pa], pbar[pg])) if uncertainty else 1.0

    anchors = [(p, _vec(f, p), esm[p]) for p in r]
    olds = [(p, _vec(fo, p), esm[p]) for p in s]
    return _naive_contrast(anchors, olds, tau, sigma)


def naive_pixel(f, lab, tau):
    b, _, h, w = f.shape
    pix = [(n, i, j) for n in range(b) for i in range(h) for j in range(w)]
    anchors = [(p, _vec(f, p), int(lab[p])) for p in pix if int(lab[p]) not in (0, 255)]
    return _naive_contrast(anchors, [], tau, lambda a, g: 1.0)


def naive_segment(f, lab, tau):
    b, _, h, w = f.shape
    anchors = []
    for n in range(b):
        for c in sorted({int(v) for v in lab[n].flatten()} - {0, 255}):
            pts = [_vec(f, (n, i, j)) for i in range(h) for j in range(w) if int(lab[n, i, j]) == c]
            anchors.append(((n, c), sum(pts) / len(pts), c))
    return _naive_contrast(anchors, [], tau, lambda a, g: 1.0)


def random_case(seed, b=2, c=4, h=4, w=4, t_old=4, n_new=2):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(b, c, h, w, generator=g, dtype=D, requires_grad=True)
    fo = torch.randn(b, c, h, w, generator=g, dtype=D)
    lab = torch.randint(0, t_old + n_new, (b, h, w), generator=g)
    lab[lab < t_old] = 0  # the step's ground truth: background or a new class
    lab[torch.rand(b, h, w, generator=g) < 0.15] = 255
    probs = torch.softmax(3 * torch.randn(b, t_old, h, w, generator=g, dtype=D), 1)
    return f, fo, lab, probs, list(range(t_old, t_old + n_new))


# ----------------------------------------------------------------------------- hand computed
def _hand_case():
    # six pixels in a row: labels 2, 2 (new class), 0, 0, 0 (background), 255
    feats = [(1, 0), (3, 4), (0, 2), (-0.8, 0.6), (1, 1), (5, 5)]
    olds = [(1, 0), (1, 0), (0.6, -0.8), (-2, 0), (1, 1), (5, 5)]
    f = torch.tensor(feats, dtype=D).T.reshape(1, 2, 1, 6).requires_grad_()
    fo = torch.tensor(olds, dtype=D).T.reshape(1, 2, 1, 6)
    lab = torch.tensor([[[2, 2, 0, 0, 0, 255]]])
    p1 = [0.5, 0.5, 0.8, 0.7, 0.1, 0.5]  # old model: P(class 1); pixels 2, 3 -> ESM 1, 4 -> 0
    probs = torch.tensor([[1 - x for x in p1], p1], dtype=D).reshape(1, 2, 1, 6)
    return f, fo, lab, probs


@pytest.mark.parametrize("uncertainty", [True, False])
def test_hand_computed_four_anchors(uncertainty):
    f, fo, lab, probs = _hand_case()
    tau = 0.5
    e = math.exp
    # R = {0, 1, 2, 3} (ESM 2, 2, 1, 1), S = {2, 3} (ESM 1); unit-vector cosines:
    # f0.f1 = .6, f0.f2 = 0, f0.f3 = -.8, f0.o2 = .6, f0.o3 = -1, f1.f2 = .8, f1.f3 = 0,
    # f1.o2 = -.28, f1.o3 = -.6, f2.f3 = .6, f2.o2 = -.8, f2.o3 = 0, f3.o2 = -.96, f3.o3 = .8
    s23 = 0.2 * 0.3 + 0.8 * 0.7 if uncertainty else 1.0  # P-bar_2 . P-bar_3
    s22 = 0.2**2 + 0.8**2 if uncertainty else 1.0
    s33 = 0.3**2 + 0.7**2 if uncertainty else 1.0
    l0 = -(0.6 / tau - math.log(e(0 / tau) + e(-0.8 / tau) + e(0.6 / tau) + e(-1 / tau)))
    l1 = -(0.6 / tau - math.log(e(0.8 / tau) + e(0 / tau) + e(-0.28 / tau) + e(-0.6 / tau)))
    d2 = math.log(e(0 / tau) + e(0.8 / tau))  # anchor 2's negatives: f0, f1
    l2 = -(s23 * (0.6 / tau - d2) + s22 * (-0.8 / tau - d2) + s23 * (0 / tau - d2)) / 3
    d3 = math.log(e(-0.8 / tau) + e(0 / tau))  # anchor 3's negatives: f0, f1
    l3 = -(s23 * (0.6 / tau - d3) + s23 * (-0.96 / tau - d3) + s33 * (0.8 / tau - d3)) / 3
    expected = (l0 + l1 + l2 + l3) / 4
    got = ucd_loss(f, fo, lab, probs, [2], temperature=tau, uncertainty=uncertainty)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    got.backward()
    assert torch.all(f.grad[..., 4:] == 0)  # background and ignored pixels get no gradient


def test_hand_computed_anchor_without_positive_is_left_out():
    # pixels 0, 1 of new class 3, pixel 2 alone of new class 4 (new classes are not in S)
    f = torch.tensor([(1, 0), (0.6, 0.8), (0, 1)], dtype=D).T.reshape(1, 2, 1, 3)
    f.requires_grad_()
    lab = torch.tensor([[[3, 3, 4]]])
    probs = torch.full((1, 3, 1, 3), 1 / 3, dtype=D)
    tau = 0.1
    # anchor 0: pos f1 (cos .6), neg f2 (cos 0); anchor 1: pos f0 (.6), neg f2 (.8); anchor 2: none
    expected = (-(0.6 - 0.0) / tau - (0.6 - 0.8) / tau) / 2
    got = ucd_loss(f, f.detach(), lab, probs, [3, 4], temperature=tau)
    assert got.item() == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------- naive loops
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"uncertainty": False},
        {"include_background": True},
        {"old_includes_new": True},
        {"include_background": True, "old_includes_new": True, "uncertainty": False},
    ],
)
def test_matches_naive_loop(seed, kw):
    f, fo, lab, probs, new = random_case(seed)
    tau = 0.07 if seed == 0 else 0.3
    got = ucd_loss(f, fo, lab, probs, new, temperature=tau, chunk_size=5, **kw)
    want = naive_ucd(
        f,
        fo,
        lab,
        probs,
        new,
        tau,
        uncertainty=kw.get("uncertainty", True),
        bg=kw.get("include_background", False),
        old_new=kw.get("old_includes_new", False),
    )
    assert abs(got.item() - want.item()) < 1e-10
    (g_got,) = torch.autograd.grad(got, f)
    (g_want,) = torch.autograd.grad(want, f)
    torch.testing.assert_close(g_got, g_want, atol=1e-10, rtol=0)


def test_random_case_covers_every_kind_of_pixel():
    f, fo, lab, probs, new = random_case(0)
    esm_old = probs.argmax(1)[lab == 0]
    assert (lab == 255).any() and (lab >= 4).any()
    assert (esm_old == 0).any() and (esm_old > 0).any()


def test_gradcheck():
    f, fo, lab, probs, new = random_case(3, b=1, c=3, h=3, w=3)
    assert torch.autograd.gradcheck(
        lambda x: ucd_loss(x, fo, lab, probs, new, temperature=0.5, chunk_size=2), (f,)
    )


@pytest.mark.parametrize("chunk", [1, 2, 7, 1000])
def test_chunk_size_does_not_change_value_or_gradient(chunk):
    f, fo, lab, probs, new = random_case(4, b=3, c=8, h=6, w=6)
    ref = ucd_loss(f, fo, lab, probs, new, chunk_size=10**6, temperature=TAU)
    got = ucd_loss(f, fo, lab, probs, new, chunk_size=chunk, temperature=TAU)
    assert abs(got.item() - ref.item()) < 1e-12
    g_ref, g_got = torch.autograd.grad(ref, f)[0], torch.autograd.grad(got, f)[0]
    torch.testing.assert_close(g_got, g_ref, atol=1e-12, rtol=0)
    # one row per chunk
    tiny_budget = ucd_loss(f, fo, lab, probs, new, memory_budget=1, temperature=TAU)
    assert abs(tiny_budget.item() - ref.item()) < 1e-12


def test_ignore_pixels_take_part_in_nothing():
    f, fo, lab, probs, new = random_case(5)
    ref = ucd_loss(f, fo, lab, probs, new, temperature=TAU)
    ign = (lab == 255)[:, None].expand_as(f)
    f2 = torch.where(ign, 100 * torch.randn_like(f), f.detach()).requires_grad_()
    fo2 = torch.where(ign, torch.randn_like(fo), fo)
    probs2 = torch.where((lab == 255)[:, None], torch.softmax(torch.randn_like(probs), 1), probs)
    got = ucd_loss(f2, fo2, lab, probs2, new, temperature=TAU)
    assert abs(got.item() - ref.item()) < 1e-12
    got.backward()
    assert torch.all(f2.grad[ign] == 0)


def test_no_gradient_into_old_features_or_probs():
    f, fo, lab, probs, new = random_case(6)
    fo.requires_grad_()
    probs.requires_grad_()
    ucd_loss(f, fo, lab, probs, new, temperature=TAU).backward()
    assert fo.grad is None and probs.grad is None and f.grad.abs().sum() > 0


@pytest.mark.parametrize("what", ["all_background", "all_ignore", "only_singletons"])
def test_empty_anchor_set_gives_differentiable_zero(what):
    f, fo, _, probs, new = random_case(7, b=1, h=2, w=2)
    if what == "all_background":
        lab = torch.zeros(1, 2, 2, dtype=torch.long)
        probs = torch.softmax(torch.tensor([5.0, 0, 0, 0], dtype=D), 0)[None, :, None, None]
        probs = probs.expand(1, 4, 2, 2)  # the old model says background everywhere
    elif what == "all_ignore":
        lab = torch.full((1, 2, 2), 255)
    else:
        lab = torch.tensor([[[4, 255], [5, 255]]])  # one pixel per new class: no positive
    loss = ucd_loss(f, fo, lab, probs, new, temperature=TAU)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.all(f.grad == 0)


def test_no_grad_mode_and_float32():
    f, fo, lab, probs, new = random_case(8)
    ref = ucd_loss(f, fo, lab, probs, new, temperature=TAU)
    with torch.no_grad():
        assert abs(ucd_loss(f, fo, lab, probs, new, temperature=TAU).item() - ref.item()) < 1e-12
    got32 = ucd_loss(f.float(), fo.float(), lab, probs.float(), new, temperature=TAU)
    assert got32.dtype == torch.float32
    assert got32.item() == pytest.approx(ref.item(), rel=1e-5)


# ----------------------------------------------------------------------------- Table 6 variants
@pytest.mark.parametrize("seed", [0, 1])
def test_pixel_contrastive_matches_naive_loop(seed):
    f, _, lab, _, _ = random_case(seed)
    got = pixel_contrastive_loss(f, lab, temperature=0.2, chunk_size=3)
    want = naive_pixel(f, lab, 0.2)
    assert abs(got.item() - want.item()) < 1e-10
    torch.testing.assert_close(
        torch.autograd.grad(got, f)[0], torch.autograd.grad(want, f)[0], atol=1e-10, rtol=0
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_segment_contrastive_matches_naive_loop(seed):
    f, _, lab, _, _ = random_case(seed, b=4, t_old=1, n_new=4)
    got = segment_contrastive_loss(f, lab, temperature=0.2, chunk_size=2)
    want = naive_segment(f, lab, 0.2)
    assert abs(got.item() - want.item()) < 1e-10
    torch.testing.assert_close(
        torch.autograd.grad(got, f)[0], torch.autograd.grad(want, f)[0], atol=1e-10, rtol=0
    )


def test_pixel_and_segment_hand_computed():
    # image 0: pixels of class 1 at (1, 0) and (1, 2) -> mean (1, 1); class 2 at (0, 1)
    # image 1: class 1 at (2, 0); pixel labelled 0 and 255 excluded
    f = torch.tensor([[(1, 0), (1, 2), (0, 1)], [(2, 0), (9, 9), (-9, 9)]], dtype=D)
    f = f.permute(0, 2, 1).reshape(2, 2, 1, 3)
    lab = torch.tensor([[[1, 1, 2]], [[1, 0, 255]]])
    tau = 1.0
    r5 = 1 / math.sqrt(5)
    # pixel: anchors a=(1,0), b=(1,2), c=(0,1) [class 2, no positive], d=(2,0)
    la = -((r5 - math.log(math.exp(0))) + (1 - math.log(math.exp(0)))) / 2
    lb = -((r5 - 2 * r5) + (r5 - 2 * r5)) / 2
    ld = -((1 - 0) + (r5 - 0)) / 2
    got = pixel_contrastive_loss(f, lab, temperature=tau)
    assert got.item() == pytest.approx((la + lb + ld) / 3, abs=1e-12)
    # segment: s0 = mean class 1 image 0 = (1, 1), s1 = class 2 image 0, s2 = class 1 image 1
    r2 = 1 / math.sqrt(2)
    l0 = -(r2 - r2)  # positive s2 (cos 1/sqrt2), negative s1 (cos 1/sqrt2)
    l2 = -(r2 - 0)  # positive s0, negative s1 (cos 0)
    got = segment_contrastive_loss(f, lab, temperature=tau)
    assert got.item() == pytest.approx((l0 + l2) / 2, abs=1e-12)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_messages():
    f, fo, lab, probs, new = random_case(9)
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        ucd_loss(f, fo, lab.double(), probs, new, temperature=TAU)
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        ucd_loss(f, fo, lab[:, :2], probs, new, temperature=TAU)
    with pytest.raises(ValueError, match="old_features must have the shape"):
        ucd_loss(f, fo[:1], lab, probs, new, temperature=TAU)
    with pytest.raises(ValueError, match="old_probs must be a float tensor"):
        ucd_loss(f, fo, lab, probs[..., :2], new, temperature=TAU)
    with pytest.raises(ValueError, match="old_probs must be probabilities"):
        ucd_loss(f, fo, lab, torch.log(probs), new, temperature=TAU)
    with pytest.raises(ValueError, match="new_classes must be the classes T_old"):
        ucd_loss(f, fo, lab, probs, [5, 6], temperature=TAU)
    with pytest.raises(ValueError, match="new_classes must be the classes T_old"):
        ucd_loss(f, fo, lab, probs, [], temperature=TAU)
    with pytest.raises(ValueError, match="labels contain classes >= T_k"):
        ucd_loss(f, fo, lab.masked_fill(lab == 5, 6), probs, [4, 5], temperature=TAU)
    with pytest.raises(ValueError, match="class indices >= 0"):
        ucd_loss(f, fo, lab.masked_fill(lab == 5, -1), probs, new, temperature=TAU)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        ucd_loss(f, fo, lab, probs, new, temperature=0.0)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        ucd_loss(f, fo, lab, probs, new, chunk_size=0, temperature=TAU)
    with pytest.raises(ValueError, match="features must be a float tensor"):
        pixel_contrastive_loss(f[0], lab, temperature=TAU)
