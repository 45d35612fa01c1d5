"""Labels at feature resolution sit at the cell centres the model's upsampling assumes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ucd.data.tasks import get_task
from ucd.methods import TERMS, Batch, StepContext
from ucd.methods.terms.common import cell_centres, labels_at

# (input H, W) -> (feature h, w): even strides, output stride 16, and sizes that do not divide
SIZES = [((64, 64), (4, 4)), ((512, 512), (32, 32)), ((65, 47), (5, 3)), ((17, 13), (5, 4)),
         ((33, 33), (3, 3)), ((7, 9), (7, 2))]


def position_map(h: int, w: int) -> torch.Tensor:
    """Labels (1, h, w) whose value encodes the pixel: y * w + x."""
    return torch.arange(h * w).view(1, h, w)


@pytest.mark.parametrize(("big", "small"), SIZES)
def test_each_cell_takes_the_pixel_under_its_centre(big, small):
    (hi, wi), (h, w) = big, small
    out = labels_at(position_map(hi, wi), (h, w))[0]
    ys, xs = out // wi, out % wi
    for i in range(h):
        centre = (i + 0.5) * hi / h  # continuous coordinate, pixel p covers [p, p + 1)
        assert (ys[i] <= centre).all() and (centre < ys[i] + 1).all(), (i, ys[i, 0].item())
    for j in range(w):
        centre = (j + 0.5) * wi / w
        assert (xs[:, j] <= centre).all() and (centre < xs[:, j] + 1).all(), (j, xs[0, j].item())


def test_stride_16_hand_values_are_half_a_cell_from_the_top_left():
    # 64 px, 4 cells of 16: centres 8, 24, 40, 56 (the top-left pixels 0, 16, 32, 48 are 7.5 px
    # from the model's cell centres 7.5, 23.5, ...)
    assert cell_centres(64, 4).tolist() == [8, 24, 40, 56]
    assert cell_centres(65, 5).tolist() == [6, 19, 32, 45, 58]  # cells of 13 px
    assert cell_centres(4, 8).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # more cells than pixels


def test_agrees_with_the_models_own_upsampling():
    # A ramp of low-resolution values upsampled as the model upsamples its logits
    # (bilinear, align_corners=False): at the pixel chosen for cell i the value is i to within
    # half an input pixel (h / 2H); the top-left pixel is almost half a cell away.
    for (hi, _), (h, _) in SIZES:
        if hi <= h:
            continue
        ramp = torch.arange(h, dtype=torch.float64).view(1, 1, h, 1)
        up = F.interpolate(ramp, size=(hi, 1), mode="bilinear", align_corners=False)[0, 0, :, 0]
        picked = up[cell_centres(hi, h)]
        assert (picked - torch.arange(h)).abs().max() <= 0.5 * h / hi + 1e-9


def test_matches_torch_nearest_exact_and_keeps_every_value():
    g = torch.Generator().manual_seed(0)
    for (hi, wi), (h, w) in SIZES:
        labels = torch.randint(0, 21, (2, hi, wi), generator=g)
        labels[:, ::3] = 255
        out = labels_at(labels, (h, w))
        ref = F.interpolate(labels[:, None].double(), size=(h, w), mode="nearest-exact")
        assert torch.equal(out, ref[:, 0].long())
        assert set(out.unique().tolist()) <= set(labels.unique().tolist())


def centre_marked_labels(fill: int, mark: int) -> torch.Tensor:
    """Labels (1, 64, 64) equal to ``fill`` except ``mark`` at the 16 cell centres of a 4 x 4
    grid (rows/cols 8, 24, 40, 56); top-left sampling would see only ``fill``."""
    labels = torch.full((1, 64, 64), fill, dtype=torch.long)
    labels[:, 8::16, 8::16] = mark
    return labels


def batch_for(labels: torch.Tensor, out: dict, old: dict | None = None) -> Batch:
    ctx = StepContext(run={}, task=get_task("digits", "5-5"), step=1, model=nn.Linear(1, 1),
                      old_model=None, device=torch.device("cpu"))
    return Batch(None, labels, out, old, ctx)


def test_ilt_dagger_mask_is_taken_at_cell_centres():
    # digits 5-5, step 1: old classes 0..5. Class 7 (new) everywhere but background at the
    # centres: every cell is distilled (top-left sampling would distil none: loss 0).
    g = torch.Generator().manual_seed(0)
    new, old = torch.randn(1, 3, 4, 4, generator=g), torch.randn(1, 3, 4, 4, generator=g)
    batch = batch_for(centre_marked_labels(7, 0), {"stages": [new]}, {"stages": [old]})
    got = TERMS["ilt_masked"]().loss(batch)
    assert got.item() == pytest.approx((new - old).pow(2).mean().item(), rel=1e-6)


def test_sdr_terms_take_labels_at_cell_centres():
    # Ignored everywhere but class 1 at the centres: the sparsity loss sees all 16 cells (with
    # top-left sampling it would see no pixel and return 0).
    feats = torch.rand(1, 4, 4, 4) + 0.1
    batch = batch_for(centre_marked_labels(255, 1), {"stages": [feats]})
    normed = feats / feats.max()
    expected = (normed.exp().sum(1) / normed.sum(1)).mean()
    assert TERMS["sdr_sparsity"]().loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_bad_labels_are_refused_by_name():
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        labels_at(torch.zeros(1, 4, 4, dtype=torch.bool), (2, 2))
    with pytest.raises(ValueError, match="sizes must be >= 1"):
        labels_at(torch.zeros(1, 4, 4, dtype=torch.long), (0, 2))
