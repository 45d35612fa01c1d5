"""Train every method for the two steps of the embedded benchmark and print old/new/all mIoU.

One setting (digits 5-5, disjoint by default) with the default embedded configuration of
``config.yaml`` (``datasets.digits``): data generated if missing, one shared plain-CE step 0 for
every method with ``step0: shared``, an own step 0 for the others (EWC, PI, RW, SDR, MiB+SDR),
Joint trained once on everything. Columns as in the paper: old = step-0 classes without
background, new = classes of step 1, all = every class but background; bg = background IoU.

Usage: python benchmarks/methods_table.py [--config config.yaml] [--setting disjoint]
       [--methods ft mib ...] [--work DIR] [--epochs N] [--pretrain] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ucd.config import deep_merge, load_yaml, run_config, step0_group  # noqa: E402
from ucd.engine import train_step  # noqa: E402
from ucd.evaluation.evaluate import evaluate_checkpoint  # noqa: E402
from ucd.methods import get_method, list_methods  # noqa: E402

TABLE_METHODS = [
    "ft", "lwf", "lwf_mc", "ilt", "ilt_dagger", "ewc", "pi", "rw", "mib", "sdr", "mib_sdr",
    "plop", "ucd", "mib_ucd", "plop_ucd", "mib_segcon", "mib_pixcon", "mib_cd",
    "mib_ucd_bg", "mib_ucd_oldnew", "joint",
]


def prepare_data(config: dict, task: str, setting: str, work: Path) -> Path:
    """Generate the digits data if missing; compute the split file into ``work``."""
    from ucd.data import digits, splits

    root = Path(config["datasets"]["digits"].get("root", "results/data/digits"))
    if not root.is_absolute():
        root = ROOT / root
    if not (root / "meta.json").is_file():
        print(f"generating the digits benchmark in {root}", file=sys.stderr)
        digits.generate(root, progress=False)
    config["datasets"]["digits"]["root"] = str(root)
    split = work / "splits" / f"{task}-{setting}.json"
    if not split.is_file():
        s = splits.compute_split("digits", root, task, setting, workers=1, progress=False)
        splits.save_split(s, split)
    return split


def pretrained_backbone(config: dict, work: Path) -> None:
    """Pretrain the small backbone once (cached in ``work``) and point the config at it."""
    from ucd.models.pretrain import pretrain_backbone

    model = config["datasets"]["digits"].setdefault("model", {})
    path = work / "pretrained_backbone.pt"
    if not path.is_file():
        print("pretraining the backbone ...", file=sys.stderr)
        pretrain_backbone(path, model)
    model["pretrained"] = str(path)


def train(config: dict, split: Path, method: str, step: int, out: Path, prev: Path | None,
          task: str, setting: str) -> dict:
    run = run_config(config, dataset="digits", task=task, setting=setting, method=method,
                     step=step)
    run["data"]["split"] = str(split)
    if not out.is_file():
        train_step(run, out, prev)
    metrics, _ = evaluate_checkpoint(out)
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "config.yaml"))
    p.add_argument("--extra-config", default=None,
                   help="YAML merged over --config (e.g. overrides / method_params)")
    p.add_argument("--task", default="5-5")
    p.add_argument("--setting", default="disjoint", choices=["disjoint", "overlapped"])
    p.add_argument("--methods", nargs="+", default=TABLE_METHODS)
    p.add_argument("--work", default="/tmp/ucd_methods_table",
                   help="checkpoints and split (reused when present: delete to retrain)")
    p.add_argument("--epochs", type=int, default=None, help="override optim.epochs")
    p.add_argument("--pretrain", action="store_true",
                   help="pretrain the backbone (ucd.models.pretrain) if the config has none")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    unknown = [m for m in args.methods if m not in list_methods()]
    if unknown:
        p.error(f"unknown methods {unknown}; valid: {', '.join(list_methods())}")

    config = copy.deepcopy(load_yaml(args.config))
    if args.extra_config:
        config = deep_merge(config, load_yaml(args.extra_config))
    if "digits" not in (config.get("datasets") or {}):
        p.error(f"{args.config} has no datasets.digits section")
    ds = config["datasets"]["digits"]
    if args.epochs is not None:
        ds.setdefault("optim", {})["epochs"] = args.epochs
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.pretrain and not (ds.get("model") or {}).get("pretrained"):
        pretrained_backbone(config, work)
    split = prepare_data(config, args.task, args.setting, work)

    rows = []
    for method in args.methods:
        start = time.perf_counter()
        m = get_method(method)
        mdir = work / method
        try:
            if m.joint:
                metrics = train(config, split, method, 0, mdir / "step0.pt", None, args.task,
                                args.setting)
            else:
                group = step0_group(config, "digits", args.task, args.setting, method)
                step0 = work / "_shared" / group / "step0.pt" if group else mdir / "step0.pt"
                step0_metrics = train(config, split, method if group is None else "ft", 0,
                                      step0, None, args.task, args.setting)
                metrics = train(config, split, method, 1, mdir / "step1.pt", step0, args.task,
                                args.setting)
                metrics["step0_miou_old"] = step0_metrics["miou_old"]
        except Exception as err:  # a diverging method is a result, not the end of the table
            print(f"{method} failed: {err}", file=sys.stderr)
            rows.append({"method": method, "error": f"{type(err).__name__}: {err}"})
            continue
        row = {"method": method, "old": metrics["miou_old"], "new": metrics["miou_new"],
               "all": metrics["miou_all"], "bg": metrics["background_iou"],
               "step0_old": metrics.get("step0_miou_old"),
               "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        print(f"done {method}: {row}", file=sys.stderr)

    def pct(v):
        return "    -" if v is None else f"{100 * v:5.1f}"

    model = ds.get("model", {})
    print(f"digits {args.task} {args.setting}: {model.get('backbone')} width {model.get('width')}"
          f", {ds.get('optim', {}).get('epochs')} epochs/step, pretrained: "
          f"{bool(model.get('pretrained'))}; mIoU (%) after step 1")
    print(f"{'method':16s} {'old':>6s} {'new':>6s} {'all':>6s} {'bg':>6s}   step0-old")
    for r in rows:
        if "error" in r:
            print(f"{r['method']:16s} failed: {r['error'][:120]}")
            continue
        print(f"{r['method']:16s} {pct(r['old']):>6s} {pct(r['new']):>6s} {pct(r['all']):>6s} "
              f"{pct(r['bg']):>6s}   {pct(r['step0_old'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
