"""Correlation of PI's and RW's importance computed as here (``ours``) and as MiB's code
(``mib``) on one shared training trajectory (docs/deviations.md, "PI and RW importance").

A small ResNet-style classifier is trained on scikit-learn's 8 x 8 digits with the protocol's
optimiser (SGD, momentum 0.9, Nesterov, weight decay 1e-4) and minibatch noise; both variants
see the same gradients and parameters, so they differ only in how the path integral pairs
gradients with displacements. Prints, per parameter tensor, the Pearson (r) and rank (rho)
correlations of the two min-max normalised importances (what the penalty uses); r is driven by
the few largest values, rho by the whole tensor.

Usage: python benchmarks/importance_variants.py [--iters 300] [--batch 16] [--lr 0.05] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from torch import nn  # noqa: E402

from ucd.losses import PathIntegral, RiemannianWalk, pi_importance, rw_importance  # noqa: E402


def model() -> nn.Module:
    """A small conv net on 8 x 8 images (batch norm, leaky ReLU as the protocol's ABN)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.LeakyReLU(0.01),
        nn.Conv2d(16, 32, 3, padding=1, stride=2), nn.BatchNorm2d(32), nn.LeakyReLU(0.01),
        nn.Flatten(), nn.Linear(32 * 16, 10),
    )


def ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks of the values of x (ties broken by position)."""
    out = torch.empty_like(x)
    out[x.argsort()] = torch.arange(len(x), dtype=x.dtype)
    return out


def corr(a: torch.Tensor, b: torch.Tensor, rank: bool = False) -> float:
    """Pearson correlation of two tensors' values (of their ranks: Spearman)."""
    a, b = a.flatten().double(), b.flatten().double()
    if rank:
        a, b = ranks(a), ranks(b)
    a, b = a - a.mean(), b - b.mean()
    den = (a.norm() * b.norm()).item()
    return float((a @ b).item() / den) if den > 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y)
    net = model()
    params = {n: p for n, p in net.named_parameters()}
    est = {v: (PathIntegral(params, variant=v), RiemannianWalk(params, variant=v))
           for v in ("ours", "mib")}
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=1e-4)
    for _ in range(args.iters):
        idx = torch.randint(0, len(x), (args.batch,))
        opt.zero_grad()
        F.cross_entropy(net(x[idx]), y[idx]).backward()
        grads = {n: p.grad for n, p in params.items()}
        for pair in est.values():
            for e in pair:
                e.after_backward(grads)
        opt.step()
        for pair in est.values():
            for e in pair:
                e.after_optimizer_step(params)
    pi = {v: pi_importance(pair[0].score()) for v, pair in est.items()}
    rw = {v: rw_importance(*pair[1].state().values()) for v, pair in est.items()}
    print(f"{'parameter':<12} {'size':>5} {'PI r':>6} {'PI rho':>6} {'RW r':>6} {'RW rho':>6}")
    for n, p in params.items():
        cols = [corr(imp["ours"][n], imp["mib"][n], rank) for imp in (pi, rw)
                for rank in (False, True)]
        print(f"{n:<12} {p.numel():>5} " + " ".join(f"{c:6.2f}" for c in cols))


if __name__ == "__main__":
    main()
