"""PLOP's own threshold computation against ours, on the same inputs (issue 23, item 4).

PLOP (arthurdouillard/CVPR2021_PLOP, train.py: ``Trainer.find_median`` and ``entropy``)
computes its per-class entropy thresholds before each step. Written here again, in this
file's own terms, from reading that code (nothing imported from ucd for this part):

- a pixel's entropy is the channel *mean* of -p log(p + 1e-8) over the old model's softmax,
  divided by log(n_old), then divided again by log(T_k) (``max_value``, T_k = classes seen
  at this step, new ones included);
- background pixels (label 0) go into a (T_k x 100) integer histogram, row = the old model's
  argmax, column = floor(100 * value), capped at 99;
- for each row with pixels: half = total / 2; a walk over the bins keeps a running sum that
  grows by the bin's *index* (not its count) and stops at the first bin b where running <=
  half <= running + count[b]; if no bin stops it, the last bin is used; the threshold is
  b / 100 + (half - running) / count[b] / 100 (a division by an empty bin gives +-inf or NaN,
  as torch does);
- each threshold is then max(threshold, 0.001) with Python's max (a NaN stays NaN);
- training accepts a background pixel when its value (same scale) is below the threshold of
  its argmax class.

For each step-0 checkpoint of benchmarks/plop_spread.py (run that first) this pass runs the
old model over the step-1 training data (the same loader ucd's engine builds) and prints:
PLOP's thresholds (on the normalised-entropy scale H / log n_old, to compare), ucd's
``official`` reading, ucd's ``median`` (ours), the exact median, and for each the share of
each class's background pixels that would be accepted as pseudo-labels.

    python benchmarks/plop_thresholds_check.py --setting disjoint
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from plop_spread import make_plan, relabelled  # noqa: E402

from ucd.losses.plop_pseudo import EntropyHistogram, normalized_entropy  # noqa: E402
from ucd.training.engine import set_up  # noqa: E402

BINS = 100


def plop_value(probs: torch.Tensor, t_k: int) -> torch.Tensor:
    """PLOP's per-pixel entropy on its own scale (B, H, W)."""
    n = probs.shape[1]
    mean_term = (probs * torch.log(probs + 1e-8)).mean(dim=1)
    return -mean_term / math.log(n + 1e-8) / math.log(t_k)


def plop_walk(row: list[int], floor: float) -> float:
    """PLOP's threshold of one histogram row, floor applied with Python's max."""
    total = sum(row)
    if total <= 0:
        value = 0.0
    else:
        half, running, stop = total / 2, 0.0, BINS - 1
        border = 0.0
        for b in range(BINS):
            border = b / BINS
            stop = int(border * BINS)
            if running <= half <= running + row[stop]:
                break
            running += border * BINS
        gap = half - running
        if row[stop]:
            value = border + gap / row[stop] / BINS
        else:
            value = math.nan if gap == 0 else math.copysign(math.inf, gap)
    return max(value, floor)  # max(nan, x) is nan, as in PLOP


def accepted(values: list[torch.Tensor], thr: list[float]) -> list[float | None]:
    """Share (%) of each class's background pixels whose value is below its threshold."""
    out = []
    for v, t in zip(values, thr, strict=True):
        v = torch.cat(v) if v else torch.zeros(0)
        out.append(None if v.numel() == 0 else round(100 * (v < t).float().mean().item(), 1))
    return out


def check(setting: str, model_seed: int, data_seed: int, work: Path) -> dict:
    """Every reading of the thresholds of one step-0 model on one data order."""
    plan, cell = make_plan(work, setting, [model_seed, data_seed])
    ckpt = work / "step0" / f"seed{model_seed}" / "model.pt"
    step = set_up(plan.run(cell, 1, data_seed), work / "scratch" / "model.pt",
                  relabelled(ckpt, data_seed, work))
    ctx = step.ctx
    n_old, t_k = ctx.n_old, ctx.n_old + len(ctx.new_classes)
    scale = n_old * math.log(t_k)  # PLOP value x scale = H / log(n_old)
    hist = torch.zeros(t_k, BINS, dtype=torch.long)
    ours = EntropyHistogram(n_old)
    official = EntropyHistogram(n_old, scale=1.0 / scale)
    plop_vals: list[list[torch.Tensor]] = [[] for _ in range(n_old)]
    norm_vals: list[list[torch.Tensor]] = [[] for _ in range(n_old)]
    with torch.no_grad():
        for images, labels in ctx.loader:
            logits = ctx.old_model(images)["logits"]
            ours.update(logits, labels)
            official.update(logits, labels)
            probs = torch.softmax(logits.float(), dim=1)
            bg, arg = labels == 0, probs.argmax(dim=1)
            pv, nv, cls = plop_value(probs, t_k)[bg], normalized_entropy(probs)[bg], arg[bg]
            col = (pv * BINS).long().clamp(max=BINS - 1)
            hist.index_put_((cls, col), torch.ones_like(cls), accumulate=True)
            for c in range(n_old):
                plop_vals[c].append(pv[cls == c])
                norm_vals[c].append(nv[cls == c])
    plop_thr = [plop_walk(hist[c].tolist(), 0.001) for c in range(n_old)]
    floor = 0.001 * scale
    readings = {
        "plop_code": [t * scale for t in plop_thr],
        "ucd_official": official.thresholds(min_threshold=floor, method="official").tolist(),
        "ucd_median": ours.thresholds(min_threshold=floor).tolist(),
        "exact_median": [max(torch.cat(v).median().item(), floor) if v else floor
                         for v in norm_vals],
    }
    return {"model": model_seed, "data": data_seed, "n_old": n_old, "t_k": t_k,
            "pixels": hist[:n_old].sum(1).tolist(),
            "plop_bins_used": int((hist[:n_old].sum(0) > 0).nonzero().max()) + 1,
            "thresholds": readings,
            "accepted_pct": {k: accepted(norm_vals, v) for k, v in readings.items()},
            "plop_code_accepted_own_scale": accepted(plop_vals, plop_thr)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setting", default="disjoint", choices=["disjoint", "overlapped"])
    p.add_argument("--seeds", type=int, nargs=2, default=[42, 43])
    p.add_argument("--work", default="results/plop_spread")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    work = Path(a.work) / a.setting
    rows = [check(a.setting, s, s, work) for s in a.seeds]
    (work / "plop_thresholds_check.json").write_text(json.dumps(rows, indent=1))
    for r in rows:
        print(f"\nstep-0 model seed {r['model']} on step-1 data of seed {r['data']} "
              f"(n_old {r['n_old']}, T_k {r['t_k']}); background pixels per argmax class "
              f"{r['pixels']}; PLOP's histogram uses its lowest {r['plop_bins_used']} bins")
        for name, thr in r["thresholds"].items():
            vals = " ".join(f"{t:8.4f}" for t in thr)
            print(f"  {name:<13} thresholds {vals}")
            print(f"  {'':<13} accepted % {r['accepted_pct'][name]}")
        print(f"  plop_code on its own scale accepts {r['plop_code_accepted_own_scale']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
