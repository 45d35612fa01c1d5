"""Tests of the quadratic penalty and the EWC / PI / RW importance estimators."""

import pytest
import torch

from ucd.losses.regularizers import (
    FisherEMA,
    PathIntegral,
    RiemannianWalk,
    ewc_importance,
    minmax_normalize,
    quadratic_penalty,
    rw_importance,
)


def test_quadratic_penalty_hand_value_and_new_params_free():
    # w: 2 * (3 - 1)^2 + 0.5 * (0 - 2)^2 = 8 + 2 = 10; "head" has no anchor -> not penalised
    params = {"w": torch.tensor([3.0, 0.0], requires_grad=True), "head": torch.ones(3)}
    old = {"w": torch.tensor([1.0, 2.0])}
    imp = {"w": torch.tensor([2.0, 0.5]), "head": torch.ones(3)}
    loss = quadratic_penalty(params, old, imp)
    assert loss.item() == pytest.approx(10.0)
    loss.backward()  # d/dw = 2 * imp * (w - old) = (8, -2)
    assert params["w"].grad.tolist() == pytest.approx([8.0, -2.0])


def test_quadratic_penalty_errors_are_named():
    with pytest.raises(ValueError, match="share no parameter name"):
        quadratic_penalty({"a": torch.ones(1)}, {"b": torch.ones(1)}, {"a": torch.ones(1)})
    with pytest.raises(ValueError, match="parameter 'a': shape"):
        quadratic_penalty({"a": torch.ones(2)}, {"a": torch.ones(3)}, {"a": torch.ones(2)})
    with pytest.raises(TypeError, match="params must be a dict"):
        quadratic_penalty([torch.ones(1)], {}, {})


def test_minmax_and_rw_importance_hand_values():
    f = {"a": torch.tensor([0.0, 2.0, 4.0])}
    s = {"a": torch.tensor([1.0, 1.0, 3.0])}
    assert minmax_normalize(f)["a"].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert ewc_importance(f)["a"].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert rw_importance(f, s)["a"].tolist() == pytest.approx([0.0, 0.5, 2.0])


def test_fisher_ema_hand_values():
    params = {"a": torch.zeros(2), "new": torch.zeros(1)}
    fisher = FisherEMA(params, alpha=0.9, previous={"a": torch.tensor([10.0, 0.0])})
    # F = 0.9 g^2 + 0.1 F: a: (0.9*4 + 1, 0.9*1 + 0); new starts at 1: 0.9*9 + 0.1
    fisher.after_backward({"a": torch.tensor([2.0, 1.0]), "new": torch.tensor([3.0])})
    st = fisher.state()
    assert st["a"].tolist() == pytest.approx([4.6, 0.9])
    assert st["new"].tolist() == pytest.approx([8.2])
    fisher.after_backward({"a": None, "new": torch.tensor([0.0])})  # None is skipped
    assert fisher.state()["a"].tolist() == pytest.approx([4.6, 0.9])


def _descend(tracker, theta, lr, steps):
    """Gradient descent on 0.5 * theta^2 (gradient = theta) reporting to ``tracker``."""
    for _ in range(steps):
        tracker.after_backward({"t": theta.clone()})
        theta = theta - lr * theta
        tracker.after_optimizer_step({"t": theta})
    return theta


def test_path_integral_hand_value():
    # theta: 1 -> 0.5 -> 0.25 with lr 0.5. omega = sum -g * dtheta = 1*0.5 + 0.5*0.25 = 0.625;
    # total displacement -0.75 -> score 0.625 / 0.5625; plus the previous score 1.
    theta = torch.tensor([1.0])
    pi = PathIntegral({"t": theta}, previous={"t": torch.tensor([1.0])})
    _descend(pi, theta, 0.5, 2)
    assert pi.score()["t"].item() == pytest.approx(0.625 / 0.5625 + 1.0, rel=1e-5)


def test_path_integral_score_is_clamped_at_zero():
    # moving uphill (theta grows along the gradient) gives negative omega -> score 0
    theta = torch.tensor([1.0])
    pi = PathIntegral({"t": theta})
    pi.after_backward({"t": torch.tensor([1.0])})
    pi.after_optimizer_step({"t": torch.tensor([2.0])})
    assert pi.score()["t"].item() == 0.0


def test_riemannian_walk_hand_value():
    # alpha = 1: F is the last g^2. Window of 2 steps: path = 0.625 (as above), F = 0.5^2 at
    # the window's end, displacement -0.75: score = 0.625 / (0.5 * 0.25 * 0.5625 + 1e-8);
    # averaged with the previous score 2.
    theta = torch.tensor([1.0])
    rw = RiemannianWalk({"t": theta}, alpha=1.0, every=2, previous_score={"t": torch.tensor([2.0])})
    _descend(rw, theta, 0.5, 3)  # the third step starts a new, unfinished window
    raw = 0.625 / (0.5 * 0.25 * 0.5625 + 1e-8)
    state = rw.state()
    assert state["score"]["t"].item() == pytest.approx(0.5 * (raw + 2.0), rel=1e-5)
    assert state["fisher"]["t"].item() == pytest.approx(0.25**2)


def test_riemannian_walk_bad_every():
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        RiemannianWalk({"t": torch.zeros(1)}, every=0)


def test_end_to_end_with_a_module():
    # EWC flow on a tiny model: Fisher during "step 0", then the penalty at "step 1" anchors the
    # old weights and leaves the added parameter free.
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    fisher = FisherEMA(dict(model.named_parameters()))
    pi = PathIntegral(dict(model.named_parameters()))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        fisher.after_backward(grads)
        pi.after_backward(grads)
        opt.step()
        pi.after_optimizer_step(dict(model.named_parameters()))
    old = {n: p.detach().clone() for n, p in model.named_parameters()}
    imp = ewc_importance(fisher.state())
    assert all(0.0 <= float(t.min()) and float(t.max()) <= 1.0 for t in imp.values())
    assert set(pi.score()) == set(old)
    extra = torch.nn.Parameter(torch.ones(2))
    params = {**dict(model.named_parameters()), "extra": extra}
    assert quadratic_penalty(params, old, imp).item() == 0.0  # at the anchor
    with torch.no_grad():
        model.weight.add_(1.0)
    loss = quadratic_penalty(params, old, imp)
    loss.backward()
    assert loss.item() > 0 and extra.grad is None
