"""SGD with (Nesterov) momentum and weight decay: the paper's optimiser, written out.

The same update as ``torch.optim.SGD`` (its single-tensor path: decay added to the gradient,
momentum buffer started from the first gradient, Nesterov look-ahead), without its import cost:
building the first ``torch.optim`` optimiser imports ``torch._dynamo``, about 2 s of every
training process, a large share of a small job on the CPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class SGD:
    """``lr`` is read from ``param_groups[0]["lr"]`` at every step (the poly schedule sets it)."""

    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float, momentum: float,
                 nesterov: bool, weight_decay: float) -> None:
        self.params = list(params)
        self.param_groups: list[dict[str, Any]] = [{
            "params": self.params, "lr": lr, "momentum": momentum, "nesterov": nesterov,
            "weight_decay": weight_decay,
        }]
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad
            if decay != 0:
                grad = grad.add(p, alpha=decay)
            if momentum != 0:
                buf = self.buffers[i]
                if buf is None:
                    buf = self.buffers[i] = torch.clone(grad).detach()
                else:
                    buf.mul_(momentum).add_(grad)
                grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
            p.add_(grad, alpha=-lr)

    def state_dict(self) -> dict[str, Any]:
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"group": group, "buffers": list(self.buffers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["buffers"]) != len(self.params):
            raise ValueError(f"optimiser state holds {len(state['buffers'])} parameters, the "
                             f"model has {len(self.params)}")
        self.param_groups[0].update(state["group"])
        self.buffers = [None if b is None else b.to(p.device, copy=True)
                        for b, p in zip(state["buffers"], self.params)]
