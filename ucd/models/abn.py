"""Activated batch norm: In-Place ABN when installed, a pure-PyTorch twin otherwise.

In-Place ABN (Rota Bulo et al., CVPR 2018) is the paper's normalisation. It normalises with
``|weight| + eps`` (so the activation stays invertible) and fuses a LeakyReLU(0.01). The fallback
reproduces exactly that, with the same state-dict keys as ``nn.BatchNorm2d``, so checkpoints move
between machines with and without the compiled extension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

try:  # pragma: no cover - depends on the machine
    from inplace_abn import InPlaceABN as _InPlaceABN
    from inplace_abn import InPlaceABNSync as _InPlaceABNSync

    HAVE_INPLACE_ABN = True
except Exception:  # ImportError, or a build that does not load (e.g. missing CUDA libs)
    _InPlaceABN = None
    _InPlaceABNSync = None
    HAVE_INPLACE_ABN = False

ACTIVATIONS = ("leaky_relu", "identity")


class ActivatedBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d with In-Place ABN's semantics: affine weight ``|w| + eps``, then activation."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        activation: str = "leaky_relu",
        activation_param: float = 0.01,
    ) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {ACTIVATIONS}")
        self.activation = activation
        self.activation_param = activation_param

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
        use_batch_stats = self.training or self.running_mean is None
        x = F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight.abs() + self.eps,
            self.bias,
            use_batch_stats,
            self.momentum,
            self.eps,
        )
        if self.activation == "leaky_relu":
            return F.leaky_relu(x, negative_slope=self.activation_param)
        return x

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}[{self.activation_param}]"


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of every rank's input is the sum of all ranks' gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        import torch.distributed as dist

        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return _AllReduceSum.apply(grad.contiguous())


class SyncActivatedBatchNorm(ActivatedBatchNorm):
    """ActivatedBatchNorm whose training statistics are all-reduced over the process group.

    Same ``|w| + eps`` affine, activation and state-dict keys; statistics are exact two-pass
    (mean, then centred sum of squares) over every rank's batch, and gradients flow through the
    all-reduces. Outside distributed training it is ActivatedBatchNorm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        all_reduce = _AllReduceSum.apply
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        self.num_batches_tracked.add_(1)
        xf = x.float()
        c = x.shape[1]
        count = xf.new_full((1,), xf.numel() // c)
        stats = all_reduce(torch.cat([xf.sum((0, 2, 3)), count]))
        n = stats[c]
        mean = stats[:c] / n
        centred = xf - mean.view(1, c, 1, 1)
        var = all_reduce(centred.square().sum((0, 2, 3))) / n
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1).clamp(min=1), alpha=m)
        scale = (self.weight.abs() + self.eps) * torch.rsqrt(var + self.eps)
        y = (centred * scale.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)).to(x.dtype)
        if self.activation == "leaky_relu":
            return F.leaky_relu(y, negative_slope=self.activation_param)
        return y


def norm_act(
    channels: int, activation: str = "leaky_relu", *, impl: str = "auto", sync: bool = False
) -> nn.Module:
    """A norm+activation layer: ``impl`` "auto" (In-Place ABN if installed), "iabn" or "abn".

    ``impl`` is the run config's ``model.norm``, the only thing that chooses it (set it to
    "abn" to force the fallback): no environment variable changes a run.
    ``sync`` selects the synchronised variant for distributed training.
    """
    if impl == "auto":
        impl = "iabn" if HAVE_INPLACE_ABN else "abn"
    if impl == "iabn":
        if not HAVE_INPLACE_ABN:
            raise RuntimeError(
                "model.norm is 'iabn' but inplace-abn is not installed; install it "
                "(see README: make iabn) or set model.norm to 'abn' (pure-PyTorch, same semantics)"
            )
        cls = _InPlaceABNSync if sync else _InPlaceABN
        return cls(channels, activation=activation, activation_param=0.01)
    if impl == "abn":
        cls = SyncActivatedBatchNorm if sync else ActivatedBatchNorm
        return cls(channels, activation=activation)
    raise ValueError(f"unknown norm implementation {impl!r}; valid: auto, iabn, abn")
