"""Train every method for every step of an embedded task and print old/new/all mIoU.

One setting (digits 5-5, disjoint by default) with the default embedded configuration of
``config.yaml`` (``datasets.digits``) and one seed. Trainings are shared as the workflow shares
them (``ucd.planning.plan``): one plain-CE step 0 for every method whose step 0 is ft's, an own step
0 for the others (EWC, PI, RW, SDR, MiB+SDR), one Joint training; a cell reusing a shared training
gets its metrics from the shared confusion matrix with its own columns. Columns as in the paper: old
= step-0 classes without background, new = classes added after step 0, all = every class but
background; bg = background IoU.

Usage: python benchmarks/methods_table.py [--config config.yaml] [--setting disjoint]
       [--methods ft mib ...] [--work DIR] [--epochs N] [--pretrain] [--threads N] [--seed S]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ucd.evaluation.evaluate import evaluate_checkpoint  # noqa: E402
from ucd.evaluation.records import cell_metrics, write_json_atomic  # noqa: E402
from ucd.facts.config import RunConfig, deep_merge, load_yaml  # noqa: E402
from ucd.methods import list_methods  # noqa: E402
from ucd.planning.plan import Cell, Plan  # noqa: E402
from ucd.training.engine import train_step  # noqa: E402

TABLE_METHODS = [
    "ft", "lwf", "lwf_mc", "ilt", "ilt_dagger", "ewc", "pi", "rw", "mib", "sdr", "mib_sdr",
    "plop", "ucd", "ucd_official", "mib_ucd", "plop_ucd", "mib_segcon", "mib_pixcon", "mib_cd",
    "mib_ucd_bg", "mib_ucd_oldnew", "joint",
]


class Trainer:
    """Trains and evaluates run configs into a work directory, reusing what exists there."""

    def __init__(self, config: dict, work: Path) -> None:
        from ucd.data import digits

        self.work = work
        root = Path(config["datasets"]["digits"].get("root", "results/data/digits"))
        self.root = root if root.is_absolute() else ROOT / root
        if not (self.root / "meta.json").is_file():
            print(f"generating the digits benchmark in {self.root}", file=sys.stderr)
            digits.generate(self.root, progress=False)
        config["datasets"]["digits"]["root"] = str(self.root)

    def split(self, task: str, setting: str) -> str:
        """The split file of a task, computed once into the work directory."""
        from ucd.data import splits

        path = self.work / "splits" / f"{task}-{setting}.json"
        if not path.is_file():
            s = splits.compute_split("digits", self.root, task, setting, workers=1,
                                     progress=False)
            splits.save_split(s, path)
        return str(path)

    def run(self, run: RunConfig, out: Path, prev: Path | None) -> Path:
        """Train ``run`` into ``out`` (unless it exists), evaluate it; its metrics.json."""
        if run.data.split is not None:  # the work directory's split, not the results path
            split = self.split(run.task, run.setting)
            run = run.replace(data=dataclasses.replace(run.data, split=split))
        metrics = out.with_suffix(".metrics.json")
        if not out.is_file():
            train_step(run, out, prev)
        if not metrics.is_file():
            write_json_atomic(evaluate_checkpoint(out)[0], metrics)
        return metrics


def train_cell(plan: Plan, trainer: Trainer, cell: Cell, seed: int) -> dict:
    """Every step of one cell; the metrics after its last step (+ step 0's old mIoU)."""
    prev, metrics = None, {}
    for k in plan.steps(cell.dataset, cell.task, cell.method):
        shared = plan.shared_run(cell, k, seed)
        if shared is not None:
            out = trainer.work / "_shared" / plan.group(cell, k, seed) / f"seed{seed}.pt"
            path = trainer.run(shared, out, prev)
            metrics = cell_metrics(path, plan.spec(cell, k, seed))
        else:
            out = trainer.work / cell.method / f"seed{seed}-step{k}.pt"
            metrics = json.loads(trainer.run(plan.run(cell, k, seed), out, prev).read_text())
        if k == 0:
            step0_old = metrics["miou_old"]
        prev = out
    return {**metrics, "step0_miou_old": step0_old}


def load_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    config = copy.deepcopy(load_yaml(args.config))
    if args.extra_config:
        config = deep_merge(config, load_yaml(args.extra_config))
    ds = (config.get("datasets") or {}).get("digits")
    if ds is None:
        parser.error(f"{args.config} has no datasets.digits section")
    if args.epochs is not None:  # every step: plain and incremental epochs
        ds.setdefault("optim", {})["epochs"] = args.epochs
        ds.setdefault("incremental", {}).setdefault("optim", {})["epochs"] = args.epochs
    known = list_methods() + list(config.get("variants") or {})
    unknown = [m for m in args.methods if m not in known]
    if unknown:
        parser.error(f"unknown methods {unknown}; valid: {', '.join(known)}")
    bench = f"digits/{args.task}/{args.setting}"
    config.update(grid=[{"benchmarks": [bench], "methods": args.methods}], benchmark=None)
    return config


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "config.yaml"))
    p.add_argument("--extra-config", default=None,
                   help="YAML merged over --config (e.g. overrides / method_params)")
    p.add_argument("--task", default="5-5")
    p.add_argument("--setting", default="disjoint", choices=["disjoint", "overlapped"])
    p.add_argument("--methods", nargs="+", default=TABLE_METHODS)
    p.add_argument("--work", default="/tmp/ucd_methods_table",
                   help="checkpoints and split (reused when present: delete to retrain)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of every step")
    p.add_argument("--seed", type=int, default=None, help="default: the config's first seed")
    p.add_argument("--pretrain", action="store_true",
                   help="pretrain the backbone (ucd.models.pretrain) if the config has none")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    return p.parse_args(argv), p


def pretrained_backbone(config: dict, work: Path) -> None:
    """Pretrain the small backbone once (cached in ``work``) and point the config at it."""
    from ucd.models.pretrain import pretrain_backbone

    model = config["datasets"]["digits"].setdefault("model", {})
    path = work / "pretrained_backbone.pt"
    if not path.is_file():
        print("pretraining the backbone ...", file=sys.stderr)
        pretrain_backbone(path, model)
    model["pretrained"] = str(path)


def print_table(rows: list[dict], run: RunConfig, epochs: tuple[int, int]) -> None:
    def pct(v):
        return "    -" if v is None else f"{100 * v:5.1f}"

    print(f"digits {run.task} {run.setting}, seed {run.seed}: {run.model.backbone} width "
          f"{run.model.width}, {epochs[0]}/{epochs[1]} epochs (step 0/later), pretrained: "
          f"{bool(run.model.pretrained)}; mIoU (%) after the last step")
    print(f"{'method':16s} {'old':>6s} {'new':>6s} {'all':>6s} {'bg':>6s}   step0-old")
    for r in rows:
        if "error" in r:
            print(f"{r['method']:16s} failed: {r['error'][:120]}")
            continue
        print(f"{r['method']:16s} {pct(r['old']):>6s} {pct(r['new']):>6s} {pct(r['all']):>6s} "
              f"{pct(r['bg']):>6s}   {pct(r['step0_old'])}")


def main(argv: list[str] | None = None) -> int:
    args, parser = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args, parser)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.pretrain and not (config["datasets"]["digits"].get("model") or {}).get("pretrained"):
        pretrained_backbone(config, work)
    trainer = Trainer(config, work)
    plan = Plan(config)
    seed = plan.seeds[0] if args.seed is None else args.seed
    rows = []
    for cell in plan.cells:
        start = time.perf_counter()
        try:
            metrics = train_cell(plan, trainer, cell, seed)
        except Exception as err:  # a diverging method is a result, not the end of the table
            print(f"{cell.method} failed: {err}", file=sys.stderr)
            rows.append({"method": cell.method, "error": f"{type(err).__name__}: {err}"})
            continue
        row = {"method": cell.method, "old": metrics["miou_old"], "new": metrics["miou_new"],
               "all": metrics["miou_all"], "bg": metrics["background_iou"],
               "step0_old": metrics["step0_miou_old"],
               "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        print(f"done {cell.method}: {row}", file=sys.stderr)
    first, n_steps = plan.cells[0], len(plan.steps("digits", args.task, "ft"))
    run0, later = plan.run(first, 0, seed), plan.run(first, min(1, n_steps - 1), seed)
    print_table(rows, later, (run0.optim.epochs, later.optim.epochs))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
