"""Where one training job's CPU time goes, phase by phase (1 torch thread, CPU seconds).

Times, for step 0 (overlapped) of a design of ``miniature_frontier.py``: the job's fixed costs
(importing torch, the first ``torch.optim`` optimiser, building the loader), the data pipeline
per sample (first epoch: PNG decoding; later epochs: the in-memory cache), before and after
this branch's data changes (``--before`` emulates the old per-sample seeding and no cache),
the model's forward+backward+update per sample, a frozen old model's forward (incremental
steps) and evaluation per image. No profiler runs (cProfile inflates Python-heavy phases
several times over), so the figures add up to what a job pays.

    python benchmarks/job_profile.py --design v3g-w12
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import miniature_frontier as mf  # noqa: E402


class OldSeededSamples:
    """The per-sample seeding before this branch: torch.manual_seed inside fork_rng."""

    def __init__(self, dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __getitem__(self, key):
        import torch

        from ucd.resume import sample_seed

        epoch, index = key
        s = sample_seed(self.seed, epoch, index)
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(s)
            np.random.seed(s % 2**32)
            torch.manual_seed(s)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


def import_costs() -> tuple[float, float]:
    """CPU-seconds of `import torch` and of the first torch.optim optimiser, in a fresh process."""
    code = ("import time; t = time.process_time(); import torch; a = time.process_time() - t; "
            "torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1); "
            "print(a, time.process_time() - t - a)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    a, b = out.stdout.split()
    return float(a), float(b)


def data_costs(dataset, seed: int, before: bool) -> tuple[float, float]:
    """ms per sample of the data pipeline: first epoch, second epoch."""
    from ucd.resume import SeededSamples

    if before:
        dataset._cache = None
    wrapped = OldSeededSamples(dataset, seed) if before else SeededSamples(dataset, seed)
    out = []
    for epoch in range(2):
        t = time.process_time()
        for i in range(len(dataset)):
            wrapped[(epoch, i)]
        out.append(1e3 * (time.process_time() - t) / len(dataset))
    return out[0], out[1]


def model_costs(run, n: int = 12) -> tuple[float, float, float]:
    """ms per sample: train forward+backward+update, frozen-model forward, evaluation."""
    import torch
    import torch.nn.functional as F

    from ucd.models import build_model

    bs, size = run["optim"]["batch_size"], run["data"]["crop_size"]
    model = build_model(run["model"], [[0, 1, 2, 3, 4, 5]]).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x, y = torch.randn(bs, 3, size, size), torch.randint(0, 6, (bs, size, size))
    times = []
    for mode in ("train", "frozen", "eval"):
        model.train(mode == "train")
        for i in range(n + 2):
            if i == 2:
                t = time.process_time()
            if mode == "train":
                loss = F.cross_entropy(model(x)["logits"], y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            else:
                with torch.no_grad():
                    model(x)
        times.append(1e3 * (time.process_time() - t) / (n * bs))
    return times[0], times[1], times[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--design", default=mf.RECOMMENDED, choices=list(mf.DESIGNS))
    p.add_argument("--work", default="results/miniature")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from ucd.config import run_config
    from ucd.engine import make_loader

    d = mf.merged(mf.DESIGNS[args.design])
    root, gen_cpu = mf.prepare_data(d["generator"], Path(args.work))
    results = Path(args.work) / "profile"
    mf.make_splits(root, results)
    cfg = mf.workflow_config(d, root, results)
    run = run_config(cfg, dataset="digits", task="5-5", setting="overlapped", method="ft", step=0)
    imp, optim = import_costs()
    t = time.process_time()
    loader = make_loader(run)
    setup = time.process_time() - t
    ds = loader.dataset.dataset
    n = len(ds)
    print(f"design {args.design}: step 0 overlapped, {n} images, batch {run['optim']['batch_size']}"
          f", {run['optim']['epochs']} epochs; data generation {gen_cpu:.1f} CPU-s (once)")
    print(f"fixed per job: import torch {imp:.2f} s, first torch.optim optimiser {optim:.2f} s "
          f"(imports torch._dynamo), loader set-up {setup:.2f} s")
    seed = run["seed"]
    for before in (True, False):
        first, later = data_costs(loader.dataset.dataset if not before else
                                  make_loader(run).dataset.dataset, seed, before)
        print(f"data per sample ({'before' if before else 'after '}): first epoch {first:.3f} "
              f"ms, later epochs {later:.3f} ms")
    train, frozen, ev = model_costs(run)
    print(f"model per sample: train fwd+bwd+update {train:.2f} ms, frozen old-model forward "
          f"{frozen:.2f} ms, evaluation forward {ev:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
