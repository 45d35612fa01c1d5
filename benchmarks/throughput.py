"""Training throughput of the default (embedded-benchmark) model on this machine, and the time
the default run takes.

    python benchmarks/throughput.py                 # images/s: FT-like and distillation steps
    python benchmarks/throughput.py --default-run   # also time `snakemake -c2 all_tables`
                                                    # from scratch in a temporary results dir
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from ucd.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def images_per_s(model_cfg: dict, *, batch: int, crop: int, iters: int, old: bool) -> float:
    """Forward+backward+SGD step images/s (plus a frozen old model's forward if ``old``)."""
    torch.manual_seed(0)
    model = build_model(model_cfg, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]).train()
    frozen = copy.deepcopy(model).eval() if old else None
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, crop, crop)
    y = torch.randint(0, 11, (batch, crop, crop))
    for i in range(iters + 2):  # two warm-up iterations
        if i == 2:
            start = time.perf_counter()
        if frozen is not None:
            with torch.no_grad():
                frozen(x)
        loss = torch.nn.functional.cross_entropy(model(x)["logits"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch * iters / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--default-run", action="store_true")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())["datasets"]["digits"]
    model_cfg = {**cfg["model"], "pretrained": None}
    batch, crop = cfg["optim"]["batch_size"], cfg["data"]["crop_size"]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, default model "
        f"{model_cfg['backbone']} width {model_cfg['width']} OS{model_cfg['output_stride']}, "
        f"batch {batch}, crop {crop}"
    )
    for old in (False, True):
        ips = images_per_s(model_cfg, batch=batch, crop=crop, iters=args.iters, old=old)
        label = "with a frozen old model (distillation)" if old else "without old model (FT)"
        print(f"  {label:45s} {ips:8.1f} images/s")
    if args.default_run:
        with tempfile.TemporaryDirectory() as tmp:
            # a fresh working directory: its results/ is empty (generated data included)
            cmd = [
                sys.executable,
                "-m",
                "snakemake",
                "-s",
                str(ROOT / "Snakefile"),
                "-d",
                tmp,
                "--cores",
                str(args.cores),
                "all_tables",
                "--quiet",
                "all",
            ]
            path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
            pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            env = {**os.environ, "PATH": path, "PYTHONPATH": pythonpath}  # this checkout's ucd
            start = time.perf_counter()
            done = subprocess.run(cmd, env=env)
            elapsed = time.perf_counter() - start
            print(
                f"default run (snakemake --cores {args.cores} all_tables, from scratch): "
                f"{elapsed / 60:.1f} min, exit code {done.returncode}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
