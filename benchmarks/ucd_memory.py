"""Peak memory and forward+backward time of the UCD loss: chunked kernel vs dense (paper Fig. 4).

Both implementations compute the same UCD loss (Eq. 11, uncertainty on) from the same inputs:
N anchor features (new model, gradient), M = N/2 old-model features (the old classes' pixels,
as in Eq. 4), C = 256 channels, T = 21 classes (VOC), float32. "ours" is
``ucd.losses.contrastive.contrastive_loss`` (chunks of anchors sized by a memory budget, exact
gradient); "dense" is ``dense_contrastive_loss`` (full N x (N + M) matrices, autograd).

How memory is measured:
- CPU: each measurement runs in a fresh subprocess (torch's CPU allocations are invisible to
  tracemalloc). After the inputs are built and a small warm-up call has run, the worker reads
  its current resident set size (/proc/self/statm); after forward+backward it reads its peak
  resident set size (getrusage ru_maxrss). Peak = the difference: the extra memory the loss
  needed at its worst moment, gradients included (an upper bound, since allocator caches count).
- CUDA: torch.cuda.max_memory_allocated() minus the memory allocated before the call.

Time: wall clock of one forward+backward after the warm-up (CPU), median of 3 (CUDA).
Dense runs whose estimated need (bytes per matrix element measured at the smallest N, times
N x (N + M)) exceeds 90% of the available memory are skipped.

Usage: python benchmarks/ucd_memory.py [--sizes 4096 16384 32768] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ucd.losses.contrastive import (  # noqa: E402
    DEFAULT_MEMORY_BUDGET,
    contrastive_loss,
    dense_contrastive_loss,
)

IMPLS = {"ours": contrastive_loss, "dense": dense_contrastive_loss}
NUM_CLASSES = 21
NUM_OLD = 16  # classes 0..15 old (VOC 15-5), 16..20 new


def make_inputs(n: int, channels: int, device: str, seed: int = 0) -> tuple:
    """N anchors (half old-class pseudo-labels, half new-class labels) and M = N/2 old features."""
    g = torch.Generator().manual_seed(seed)
    m = n // 2
    y = torch.cat(
        [
            torch.randint(1, NUM_OLD, (m,), generator=g),
            torch.randint(NUM_OLD, 21, (n - m,), generator=g),
        ]
    )
    logits = 2 * torch.randn(n, NUM_CLASSES, generator=g)
    logits[torch.arange(n), y] += 4
    p = torch.softmax(logits, 1)
    p[m:] = torch.nn.functional.one_hot(y[m:], NUM_CLASSES).float()  # ground truth: one-hot
    z = torch.randn(n, channels, generator=g)
    o = z[:m] + 0.5 * torch.randn(m, channels, generator=g)  # old features of the old classes
    to = {"device": device}
    z = z.to(**to).requires_grad_()
    return z, y.to(**to), o.to(**to), y[:m].to(**to), p.to(**to), p[:m].to(**to)


def run_once(impl: str, inputs: tuple, budget: int) -> float:
    z, y, o, yo, p, po = inputs
    kw = {"memory_budget": budget} if impl == "ours" else {}
    loss = IMPLS[impl](z, y, o, yo, temperature=0.07, anchor_probs=p, other_probs=po, **kw)
    loss.backward()
    z.grad = None
    return float(loss)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_worker(impl: str, n: int, channels: int, budget: int) -> dict:
    """One measurement in this (fresh) process; returns peak extra bytes, seconds, loss."""
    run_once(impl, make_inputs(256, channels, "cpu", seed=1), budget)  # warm-up
    inputs = make_inputs(n, channels, "cpu")
    base = _rss_bytes()
    start = time.perf_counter()
    value = run_once(impl, inputs, budget)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"peak_bytes": peak, "seconds": seconds, "loss": value}


def measure_cpu(impl: str, n: int, channels: int, budget: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, str(n), "--channels", str(channels)]
    cmd += ["--budget-mib", str(budget / 2**20)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure_cuda(impl: str, n: int, channels: int, budget: int) -> dict:
    inputs = make_inputs(n, channels, "cuda")
    run_once(impl, inputs, budget)  # warm-up
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        value = run_once(impl, inputs, budget)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() - base
    del inputs
    torch.cuda.empty_cache()
    return {"peak_bytes": peak, "seconds": statistics.median(times), "loss": value}


def available_bytes(device: str) -> int:
    if device == "cuda":
        return torch.cuda.mem_get_info()[0]
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    return info["MemAvailable"]


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        model = "unknown CPU"
    return f"{model}, {torch.get_num_threads()} threads"


def benchmark(device: str, sizes: list[int], channels: int, budget: int) -> None:
    measure = measure_cuda if device == "cuda" else measure_cpu
    print(f"\n== {device}: {device_name(device)}; torch {torch.__version__}")
    print(
        f"   UCD loss forward+backward, M = N/2 old features, C = {channels}, T = {NUM_CLASSES}, "
        f"float32, tau 0.07; ours: memory budget {budget / 2**20:.0f} MiB"
    )
    head = ("N", "M", "ours MiB", "ours s", "dense MiB", "dense s", "mem ratio", "speedup")
    print("{:>6} {:>6} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8}".format(*head), flush=True)
    bytes_per_element = None
    for n in sizes:
        m = n // 2
        ours = measure("ours", n, channels, budget)
        row = [
            f"{n:>6}",
            f"{m:>6}",
            f"{ours['peak_bytes'] / 2**20:>10.1f}",
            f"{ours['seconds']:>8.2f}",
        ]
        need = None if bytes_per_element is None else bytes_per_element * n * (n + m)
        if need is not None and need > 0.9 * available_bytes(device):
            row.append(f"dense skipped (would need {need / 2**30:.1f} GB)")
        else:
            dense = measure("dense", n, channels, budget)
            bytes_per_element = dense["peak_bytes"] / (n * (n + m))
            if abs(dense["loss"] - ours["loss"]) > 1e-4 * abs(dense["loss"]):
                raise RuntimeError(f"losses differ: {ours['loss']} vs {dense['loss']}")
            row += [
                f"{dense['peak_bytes'] / 2**20:>10.1f}",
                f"{dense['seconds']:>8.2f}",
                f"{dense['peak_bytes'] / max(ours['peak_bytes'], 1):>9.1f}x",
                f"{dense['seconds'] / ours['seconds']:>7.1f}x",
            ]
        print(" ".join(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384, 32768])
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--budget-mib", type=float, default=DEFAULT_MEMORY_BUDGET / 2**20)
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    budget = int(args.budget_mib * 2**20)
    if args.worker:
        result = cpu_worker(args.worker[0], int(args.worker[1]), args.channels, budget)
        print(json.dumps(result))
        return
    devices = {"auto": ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])}
    for device in devices.get(args.device, [args.device]):
        benchmark(device, sorted(args.sizes), args.channels, budget)


if __name__ == "__main__":
    main()
