"""ucd.training.optim.SGD is torch.optim.SGD's update, bit for bit, and its state round-trips."""

from __future__ import annotations

import pytest
import torch

from ucd.training.optim import SGD


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(3, 4, generator=g)),
            torch.nn.Parameter(torch.randn(5, generator=g))]


@pytest.mark.parametrize("nesterov,decay", [(True, 1e-4), (False, 0.0), (True, 0.0)])
def test_same_update_as_torch_sgd(nesterov, decay):
    ours, theirs = _params(0), _params(0)
    opt = SGD(ours, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=decay)
    ref = torch.optim.SGD(theirs, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=decay)
    g = torch.Generator().manual_seed(1)
    for step in range(4):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        for a, b, grad in zip(ours, theirs, grads):
            a.grad, b.grad = grad.clone(), grad.clone()
        lr = 0.1 * (1 - step / 4) ** 0.9  # the poly schedule sets lr between steps
        opt.param_groups[0]["lr"] = ref.param_groups[0]["lr"] = lr
        opt.step()
        ref.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b)


def test_hand_computed_first_two_nesterov_steps():
    p = torch.nn.Parameter(torch.tensor([1.0]))
    opt = SGD([p], lr=0.5, momentum=0.5, nesterov=True, weight_decay=0.0)
    p.grad = torch.tensor([2.0])
    opt.step()  # buf = 2; d = 2 + 0.5 * 2 = 3; p = 1 - 1.5
    assert p.item() == pytest.approx(-0.5)
    p.grad = torch.tensor([2.0])
    opt.step()  # buf = 0.5 * 2 + 2 = 3; d = 2 + 1.5 = 3.5; p = -0.5 - 1.75
    assert p.item() == pytest.approx(-2.25)


def test_state_round_trip_continues_identically():
    a, b = _params(2), _params(2)
    opt_a = SGD(a, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    for p in a:
        p.grad = torch.ones_like(p)
    opt_a.step()
    opt_b = SGD(b, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    with torch.no_grad():
        for x, y in zip(a, b):
            y.copy_(x)
    opt_b.load_state_dict(opt_a.state_dict())
    for opt, ps in ((opt_a, a), (opt_b, b)):
        for p in ps:
            p.grad = torch.full_like(p, 0.5)
        opt.step()
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="holds 2 parameters, the model has 1"):
        SGD(a[:1], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0).load_state_dict(
            opt_a.state_dict())
