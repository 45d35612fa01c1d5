"""The miniature's frontier: fidelity against CPU-seconds, for designs of the digits benchmark.

A design is a generator style (``ucd.data.digits.generate``'s arguments) and a
``datasets.digits`` section merged over config.yaml's. Each runs digits 5-5 through the real
pipeline (generate -> split -> ``ucd.planning.plan.Plan`` -> ``ucd.training.engine.train_step`` ->
``evaluate_checkpoint``) in this process with one torch thread: step 0 of both settings (shared
as the workflow shares it), Joint, and step 1 of ``--methods``, and prints old/new mIoU and the
CPU-seconds (``time.process_time``) of every job, so that a design's cost and what it buys are
read side by side. Per-job fixed costs (interpreter, imports: benchmarks/job_cost.py) are not
in these figures.

    python benchmarks/miniature_frontier.py                          # the default design
    python benchmarks/miniature_frontier.py --design E6 E12 --methods ft,lwf,ilt,mib
    python benchmarks/miniature_frontier.py --design v3 --settings overlapped

Rows are appended to ``--out`` (JSON lines) as they finish.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ucd.data.digits import generate  # noqa: E402
from ucd.data.splits import compute_split, save_split  # noqa: E402
from ucd.evaluation.evaluate import evaluate_checkpoint  # noqa: E402
from ucd.planning.plan import Cell, Plan  # noqa: E402
from ucd.training.engine import train_step  # noqa: E402

# The round-2 benchmark: 48-px images, 95 % of them one digit, lr 0.02 then 0.01, 3 then 2
# epochs, batch 16, flips (its generator style spelled out: the defaults have changed).
V3 = {
    "generator": {"n_train": 1600, "n_val": 300, "style": {
        "size": 48, "digit_px": [28, 44], "n_digits_p": [0.5, 0.3, 0.2], "same_class_p": 0.5,
        "max_overlap": 0.3, "place_tries": 10}},
    "digits": {"optim": {"lr": 0.02, "epochs": 3, "batch_size": 16, "min_iterations": 0},
               "incremental": {"optim": {"lr": 0.01, "epochs": 2}},
               "data": {"crop_size": 48, "flip": True}},
}


def epochs(n: int) -> dict[str, Any]:
    """The default design (config.yaml) with n epochs at every step."""
    return {"generator": {}, "digits": {"optim": {"epochs": n}}}


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``, mapping by mapping."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merged(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


DESIGNS: dict[str, dict[str, Any]] = {"v3": V3, "E3": epochs(3), "E6": epochs(6), "E8": epochs(8),
           "default": {"generator": {}, "digits": {}}, "E16": epochs(16)}


def run_design(name: str, design: dict[str, Any], methods: list[str], settings: list[str],
               seed: int, work: Path) -> dict[str, Any]:
    """Train step 0 (both settings), Joint and step 1 of `methods`; mIoU and CPU-s per job."""
    root = work / name / "data"
    if not (root / "meta.json").is_file():
        generate(root, seed=0, progress=False, **design["generator"])
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    digits = merged(config["datasets"]["digits"], design["digits"])
    digits.update(root=str(root), train={**digits.get("train", {}), "device": "cpu"})
    res = work / name / f"seed{seed}"
    config.update(results=str(res), seeds=[seed], datasets={"digits": digits},
                  grid=[{"benchmarks": [f"digits/5-5/{s}" for s in settings],
                         "methods": ["joint", *methods]}])
    plan = Plan(config)
    row: dict[str, Any] = {"design": name, "seed": seed, "digits": design["digits"],
                           "jobs": {}}
    done: set[str] = set()
    for s in settings:
        split = res / "splits" / "digits" / "5-5" / f"{s}.json"
        save_split(compute_split("digits", root, "5-5", s, workers=1, progress=False), split)
        for m in ["joint", *methods]:
            cell, prev = Cell("digits", "5-5", s, m), None
            for k in plan.steps("digits", "5-5", m):
                run = plan.shared_run(cell, k, seed) or plan.run(cell, k, seed)
                key = plan.group(cell, k, seed) or f"{s}/{m}/step{k}"
                ckpt = res / key / "model.pt"
                if key not in done:
                    start = time.process_time()
                    stats = train_step(run, ckpt, prev=prev)
                    metrics, _ = evaluate_checkpoint(ckpt, device="cpu")
                    row["jobs"][key] = {
                        "old": _pct(metrics["miou_old"]), "new": _pct(metrics["miou_new"]),
                        "all": _pct(metrics["miou_all"]), "iterations": stats["iterations"],
                        "images_per_s": round(stats["images_per_s"], 1),
                        "cpu_s": round(time.process_time() - start, 1)}
                    done.add(key)
                    print(name, key, row["jobs"][key], flush=True)
                prev = str(ckpt)
    row["cpu_s"] = round(sum(j["cpu_s"] for j in row["jobs"].values()), 1)
    return row


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--design", nargs="+", default=["default"], choices=sorted(DESIGNS))
    p.add_argument("--methods", default="ft,mib", help="step-1 methods (comma-separated)")
    p.add_argument("--settings", default="overlapped,disjoint")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work", default="results/frontier", help="scratch directory")
    p.add_argument("--out", default="results/frontier/frontier.jsonl")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in a.design:
        row = run_design(name, DESIGNS[name], a.methods.split(","), a.settings.split(","),
                         a.seed, Path(a.work))
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        rows.append(row)
    print(f"\n{'design':<8} {'job':<40} {'old':>6} {'new':>6} {'iters':>6} {'CPU-s':>7}")
    for row in rows:
        for key, j in row["jobs"].items():
            print(f"{row['design']:<8} {key[-40:]:<40} {j['old'] or '-':>6} {j['new'] or '-':>6} "
                  f"{j['iterations']:>6} {j['cpu_s']:>7}")
        print(f"{row['design']:<8} {'total':<40} {'':>6} {'':>6} {'':>6} {row['cpu_s']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
