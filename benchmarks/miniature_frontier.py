"""The miniature's frontier: step-0 mIoU against CPU-seconds, for designs of the digits benchmark.

Each design (generator style and image counts, model, optimiser, crop) runs through the real
pipeline (``ucd.data.digits`` -> ``ucd.data.splits`` -> ``ucd.config.run_config`` ->
``ucd.engine.train_step`` -> ``ucd.evaluation.evaluate.evaluate_checkpoint``) on digits 5-5, in
this process with one torch thread, and every job's CPU time (``time.process_time``) is
recorded, so the figures are those the workflow's jobs pay, less what each job process adds
(~2 s importing torch, ~1.5 s for the first torch.optim optimiser, paid once here). Jobs: step
0 of both settings, Joint, and step 1 of FT and MiB (``--methods`` names others, e.g. the
default grid's ft,mib,plop,ucd,mib_ucd,plop_ucd); ``--quick`` trains only step 0 overlapped.

    python benchmarks/miniature_frontier.py                  # the recommended design
    python benchmarks/miniature_frontier.py --design v3e-w12 --seed 43 --quick
    python benchmarks/miniature_frontier.py --table out.jsonl  # print a table of saved rows

Rows are appended to ``--out`` (JSON lines), one per design, and printed as a table.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Designs tried, in the order they were tried (see the report of issue 13). `generator` holds
# ucd.data.digits.generate's arguments (n_train, n_val, style); the other sections are the
# workflow config's `datasets.digits` sections.
BASE: dict[str, Any] = {
    "generator": {"n_train": 1200, "n_val": 300, "style": {}},
    "model": {"backbone": "resnet18", "width": 24, "head_channels": 64, "output_stride": 8},
    "optim": {"lr": 0.1, "lr_next": 0.01, "epochs": 16, "epochs_next": 4, "batch_size": 16},
    "data": {"crop_size": 64},
}
V3_STYLE = {"size": 48, "digit_px": [28, 44], "bold_px": 2, "texture_contrast": 80, "noise": 3}


def v3(n_train: int = 2400, *, pretrained: str | None = "digits-resnet18-w16", width: int = 16,
       **optim: Any) -> dict[str, Any]:
    """A design on generator v3 (48 px, bold digits), ResNet-18 with ASPP rates (1, 2, 3)."""
    return {
        "generator": {"n_train": n_train, "n_val": 300, "style": V3_STYLE},
        "model": {"width": width, "aspp_rates": [1, 2, 3], "pretrained": pretrained},
        "optim": {"lr": 0.02, "lr_next": 0.01, "epochs": 3, "epochs_next": 1, **optim},
        "data": {"crop_size": 48},
    }


# Rows measured with weights no longer in the repository (pretrained on the benchmark's own
# style; or, before the glyph pools were shuffled, with val glyphs seen in pretraining) are in
# the report of issue 13 only.
DESIGNS: dict[str, dict[str, Any]] = {
    "v2-default": {},  # generator v2, 64 px, from scratch: the 11.5 %
    "v3-scratch": v3(3000, pretrained=None, epochs=2),  # generator v3 alone
    "v3b": v3(2400),
    "v3c": v3(2400, lr_next=0.02),
    "v3e": v3(2000, epochs_next=2),
    "v3f": v3(2400, epochs_next=2),
    "v3f-w12": v3(2400, epochs_next=2, width=12, pretrained="digits-resnet18-w12"),
    "v3e-w12": v3(2000, epochs_next=2, width=12, pretrained="digits-resnet18-w12"),
    "v3g-w12": v3(1600, epochs_next=2, width=12, pretrained="digits-resnet18-w12"),
}
RECOMMENDED = "v3g-w12"  # the generator's defaults and the config snippet of issue 13's report


def merged(design: dict[str, Any]) -> dict[str, Any]:
    """BASE with the design's sections merged over it (one level deep)."""
    out = copy.deepcopy(BASE)
    for key, value in design.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]


def prepare_data(gen: dict[str, Any], work: Path) -> tuple[Path, float]:
    """Generated data for `gen` (cached by its digest) and the CPU-seconds it took."""
    from ucd.data.digits import generate

    root = work / "data" / _digest(gen)
    if (root / "meta.json").is_file():
        return root, float(json.loads((root / "cpu.json").read_text())["cpu_s"])
    shutil.rmtree(root, ignore_errors=True)
    t = time.process_time()
    generate(root, seed=0, progress=False, **gen)
    cpu = time.process_time() - t
    (root / "cpu.json").write_text(json.dumps({"cpu_s": cpu}))
    return root, cpu


def workflow_config(d: dict[str, Any], root: Path, results: Path,
                    seed: int | None = None) -> dict[str, Any]:
    """config.yaml with datasets.digits replaced by the design's sections (and the seed)."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    if seed is not None:
        cfg.setdefault("defaults", {})["seed"] = seed
    digits = cfg["datasets"]["digits"]
    for key in ("model", "optim", "data"):
        digits[key] = {**digits.get(key, {}), **d[key]}
    digits["root"] = str(root)
    digits.setdefault("train", {})["device"] = "cpu"
    cfg["results"] = str(results)
    return cfg


def make_splits(root: Path, results: Path) -> None:
    from ucd.data.splits import compute_split, save_split

    for setting in ("disjoint", "overlapped"):
        split = compute_split("digits", root, "5-5", setting, workers=1, progress=False)
        save_split(split, results / "splits" / "digits" / "5-5" / f"{setting}.json")


def job(cfg: dict, setting: str, method: str, step: int, out: Path, prev: Path | None) -> dict:
    """Train one step and evaluate it; metrics plus the CPU-seconds of each part."""
    from ucd.config import run_config
    from ucd.engine import train_step
    from ucd.evaluation.evaluate import evaluate_checkpoint

    run = run_config(cfg, dataset="digits", task="5-5", setting=setting, method=method, step=step)
    t = time.process_time()
    train_step(run, out, prev)
    train_cpu = time.process_time() - t
    t = time.process_time()
    metrics, _ = evaluate_checkpoint(out, device="cpu")
    eval_cpu = time.process_time() - t
    return {"miou_old": metrics["miou_old"], "miou_new": metrics["miou_new"],
            "miou_all": metrics["miou_all"], "train_cpu_s": train_cpu, "eval_cpu_s": eval_cpu}


def run_design(name: str, design: dict[str, Any], work: Path, quick: bool,
               methods: list[str], seed: int | None = None) -> dict[str, Any]:
    """Every job of one design; a row of the frontier."""
    d = merged(design)
    root, gen_cpu = prepare_data(d["generator"], work)
    results = work / "runs" / f"{name}-{_digest(d)}-seed{seed}"
    shutil.rmtree(results, ignore_errors=True)
    t = time.process_time()
    make_splits(root, results)
    row: dict[str, Any] = {"design": name, "seed": seed, "config": d, "data_cpu_s": gen_cpu,
                           "split_cpu_s": time.process_time() - t, "jobs": {}}
    cfg = workflow_config(d, root, results, seed)
    settings = ["overlapped"] if quick else ["overlapped", "disjoint"]
    for setting in settings:
        s0 = results / setting / "step0" / "model.pt"
        row["jobs"][f"step0/{setting}"] = job(cfg, setting, "ft", 0, s0, None)
        print(f"  {name} step0 {setting}: {row['jobs'][f'step0/{setting}']}", flush=True)
        if quick:
            continue
        for method in methods:
            r = job(cfg, setting, method, 1, results / setting / method / "model.pt", s0)
            row["jobs"][f"{method}/{setting}"] = r
            print(f"  {name} {method} {setting}: {r}", flush=True)
    if not quick:
        r = job(cfg, "overlapped", "joint", 0, results / "joint" / "model.pt", None)
        row["jobs"]["joint"] = r
        print(f"  {name} joint: {r}", flush=True)
    return row


def _pct(x: float | None) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}"


def _get(jobs: dict[str, dict], key: str, metric: str) -> float | None:
    return jobs[key][metric] if key in jobs else None


def _pair(jobs: dict[str, dict], method: str, metric: str) -> str:
    """overlapped/disjoint value of a step-1 metric."""
    return "/".join(_pct(_get(jobs, f"{method}/{s}", metric)) for s in ("overlapped", "disjoint"))


def _name(row: dict[str, Any]) -> str:
    return row["design"] + ("" if row.get("seed") is None else f"/{row['seed']}")


def table(rows: list[dict[str, Any]]) -> str:
    """The frontier: step-0 mIoU, Joint, FT old / MiB new after step 1, CPU-s per job kind."""
    head = (f"{'design':<14} {'s0 ov':>5} {'s0 dj':>5} {'joint':>5} {'FT old ov/dj':>12} "
            f"{'MiB new ov/dj':>13} | CPU-s: {'s0':>4} {'joint':>5} {'step1':>5} {'eval':>4} "
            f"{'data':>4}")
    lines = [head, "-" * len(head)]
    for r in rows:
        j = r["jobs"]
        s0 = [v["train_cpu_s"] for k, v in j.items() if k.startswith("step0")]
        s1 = [v["train_cpu_s"] for k, v in j.items() if not k.startswith(("step0", "joint"))]
        ev = [v["eval_cpu_s"] for v in j.values()]
        lines.append(
            f"{_name(r):<14} {_pct(_get(j, 'step0/overlapped', 'miou_old'))} "
            f"{_pct(_get(j, 'step0/disjoint', 'miou_old'))} {_pct(_get(j, 'joint', 'miou_all'))} "
            f"{_pair(j, 'ft', 'miou_old'):>12} {_pair(j, 'mib', 'miou_new'):>13} | "
            f"{' ' * 7}{max(s0, default=0):4.0f} {_get(j, 'joint', 'train_cpu_s') or 0:5.0f} "
            f"{max(s1, default=0):5.0f} {max(ev, default=0):4.1f} {r['data_cpu_s']:4.0f}"
        )
    return "\n".join(lines)


def detail(rows: list[dict[str, Any]]) -> str:
    """Every job of every design: old / new / all mIoU and its CPU-seconds."""
    cols = ("old", "new", "all")
    lines = [f"{'design':<14} {'job':<22} " + " ".join(f"{c:>5}" for c in cols)
             + f" {'train':>6} {'eval':>5}"]
    for r in rows:
        for key, v in r["jobs"].items():
            lines.append(f"{_name(r):<14} {key:<22} {_pct(v['miou_old'])} "
                         f"{_pct(v['miou_new'])} {_pct(v['miou_all'])} "
                         f"{v['train_cpu_s']:6.1f} {v['eval_cpu_s']:5.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--design", action="append",
                   help=f"design names (default: {RECOMMENDED}); known: {', '.join(DESIGNS)}")
    p.add_argument("--quick", action="store_true", help="step 0 overlapped only")
    p.add_argument("--methods", default="ft,mib", help="step-1 methods (comma-separated)")
    p.add_argument("--work", default="results/miniature", help="data and checkpoints")
    p.add_argument("--seed", type=int, default=None, help="training seed (default: config's)")
    p.add_argument("--out", default="results/miniature/frontier.jsonl")
    p.add_argument("--table", help="only print the table of this JSON-lines file")
    args = p.parse_args(argv)
    if args.table:
        rows = [json.loads(x) for x in Path(args.table).read_text().splitlines() if x.strip()]
        print(table(rows), detail(rows), sep="\n\n")
        return 0
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    names = args.design or [RECOMMENDED]
    unknown = [n for n in names if n not in DESIGNS]
    if unknown:
        p.error(f"unknown designs {unknown}; known: {', '.join(DESIGNS)}")
    work, out = Path(args.work), Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        row = run_design(name, DESIGNS[name], work, args.quick, args.methods.split(","),
                         args.seed)
        rows.append(row)
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
    print(table(rows), detail(rows), sep="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
