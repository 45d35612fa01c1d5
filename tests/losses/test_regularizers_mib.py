"""PI / RW importance as MiB's code computes it (``variant="mib"``), on hand-worked paths."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ucd.data.tasks import get_task
from ucd.losses import PathIntegral, RiemannianWalk
from ucd.methods import TERMS, Batch, StepContext


def walk(tracker, thetas: list[float]) -> None:
    """Feed a scalar path theta_0, theta_1, ...: the gradient at theta_t is theta_t (f = t^2/2)
    and the optimiser moves to theta_{t+1}."""
    for now, nxt in zip(thetas, thetas[1:]):
        tracker.after_backward({"t": torch.tensor([now])})
        tracker.after_optimizer_step({"t": torch.tensor([nxt])})


def test_pi_mib_pairs_each_step_with_the_next_gradient():
    # theta 1 -> 0.5 -> 0.25 -> 0.125. MiB: -g_1 (theta_1 - theta_0) - g_2 (theta_2 - theta_1)
    # = 0.5 * 0.5 + 0.25 * 0.25 = 0.3125 (the last step has no gradient after it); ours (SI):
    # 1 * 0.5 + 0.5 * 0.25 + 0.25 * 0.125 = 0.65625. Both over (0.125 - 1)^2.
    mib = PathIntegral({"t": torch.tensor([1.0])}, variant="mib")
    ours = PathIntegral({"t": torch.tensor([1.0])})
    path = [1.0, 0.5, 0.25, 0.125]
    walk(mib, path)
    walk(ours, path)
    assert mib.score()["t"].item() == pytest.approx(0.3125 / 0.875**2, rel=1e-6)
    assert ours.score()["t"].item() == pytest.approx(0.65625 / 0.875**2, rel=1e-6)


def test_pi_mib_scores_an_overshooting_parameter_zero():
    # lr 1.5 on t^2/2 overshoots: 1 -> -0.5 -> 0.25 -> -0.125. Every step lowers the loss
    # (SI: 1.5 + 0.375 + 0.09375 > 0), but each next gradient points back: MiB's sum
    # -(-0.5)(-1.5) - (0.25)(0.75) = -0.9375 is clamped to 0.
    mib = PathIntegral({"t": torch.tensor([1.0])}, variant="mib")
    ours = PathIntegral({"t": torch.tensor([1.0])})
    path = [1.0, -0.5, 0.25, -0.125]
    walk(mib, path)
    walk(ours, path)
    assert mib.score()["t"].item() == 0.0
    assert ours.score()["t"].item() == pytest.approx(1.96875 / 1.125**2, rel=1e-6)


def test_rw_mib_scores_a_window_by_its_end_gradient_and_the_fisher_before_it():
    # alpha 1 (F = last g^2), every 2, theta 1 -> 0.5 -> 0.25 -> 0.125. At iteration 2
    # (theta 0.25, g 0.25) the window 1 -> 0.25 closes: D = -0.75, F = 0.5^2 (before g_2's
    # update): -g D / (0.5 F D^2 + 1e-8) = 0.1875 / 0.0703125; averaged with the previous 2.
    rw = RiemannianWalk({"t": torch.tensor([1.0])}, alpha=1.0, every=2, variant="mib",
                        previous_score={"t": torch.tensor([2.0])})
    walk(rw, [1.0, 0.5, 0.25, 0.125])
    raw = 0.1875 / (0.5 * 0.25 * 0.5625 + 1e-8)
    state = rw.state()
    assert state["score"]["t"].item() == pytest.approx(0.5 * (raw + 2.0), rel=1e-5)
    assert state["fisher"]["t"].item() == pytest.approx(0.25**2)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match=r"variant must be one of \['ours', 'mib'\]"):
        PathIntegral({"t": torch.zeros(1)}, variant="si")
    with pytest.raises(ValueError, match=r"term 'rw': importance must be one of"):
        TERMS["rw"](importance="MiB")


def test_pi_term_importance_mib_on_a_model():
    # plain SGD (lr 0.1) at step 0 (no penalty): theta_t - theta_{t-1} = -lr g_{t-1}, so MiB's
    # omega is sum_{t>=1} lr g_t g_{t-1}, SI's sum_t lr g_t^2 (computed here independently)
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    ctx = StepContext(run={}, task=get_task("digits", "5-5"), step=0, model=model,
                      old_model=None, device=torch.device("cpu"))
    term = TERMS["pi"](importance="mib")
    term.before_step(ctx)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    grads = []
    for _ in range(4):
        x, y = torch.randn(6, 4), torch.randint(0, 3, (6,))
        opt.zero_grad()
        ce = F.cross_entropy(model(x), y)
        (ce + term.weight * term.loss(Batch(x, y, {"logits": ce}, None, ctx))).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        term.after_backward(ctx)
        opt.step()
        term.after_optimizer_step(ctx)
    score = term.state_dict()["score"]
    for n, p in model.named_parameters():
        omega = sum(0.1 * g[n] * h[n] for g, h in zip(grads[1:], grads[:-1]))
        expected = (omega / ((p.detach() - start[n]) ** 2 + 1e-20)).clamp(min=0)
        torch.testing.assert_close(score[n], expected, rtol=1e-4, atol=1e-6)
