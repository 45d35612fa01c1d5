"""One method's steps of digits 5-5 on a finished run's data: a quick check of a fix.

Resolves the method's run configs as the workflow would for ``--results`` (a finished run
such as the default one, whose data, splits and shared step-0 checkpoints are read, never
written) and trains in this process, one torch thread, into ``--work``: step 0 when the
method trains its own (a shared step 0 is taken from ``--results``), then step 1. Prints the
old/new mIoU of each step beside the finished run's own figures for the same method, so that
a change of a method's definition or wiring is seen on one step.

    python benchmarks/method_check.py --method lwf_mc --setting disjoint \
        --results /work/main/results
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ucd.evaluation.evaluate import evaluate_checkpoint  # noqa: E402
from ucd.planning.plan import Cell, Plan  # noqa: E402
from ucd.training.engine import train_step  # noqa: E402


def plan_for(results: Path | None, method: str, setting: str, seed: int) -> Plan:
    """config.yaml's grid narrowed to one cell, its paths under ``results`` (None: the paths
    as config.yaml writes them, which name the shared trainings as the finished run did)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if results is not None:
        config["datasets"]["digits"].update(root=str(results / "data" / "digits"),
                                            generate=False)
        config["results"] = str(results)
    config.update(seeds=[seed],
                  grid=[{"benchmarks": [f"digits/5-5/{setting}"], "methods": [method]}])
    return Plan(config)


def figures(metrics_path: Path) -> str:
    """old / new mIoU (%) of a metrics.json, or a dash when there is none."""
    if not metrics_path.is_file():
        return "-"
    m = json.loads(metrics_path.read_text())
    new = "-" if m.get("miou_new") is None else f"{100 * m['miou_new']:.1f}"
    return f"old {100 * m['miou_old']:.1f} / new {new}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True)
    p.add_argument("--setting", default="disjoint", choices=["disjoint", "overlapped"])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--results", required=True, help="a finished run's results directory")
    p.add_argument("--work", default="results/method_check", help="where checkpoints go")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    results = Path(a.results).resolve()
    plan = plan_for(results, a.method, a.setting, a.seed)
    as_written = plan_for(None, a.method, a.setting, a.seed)
    cell = Cell("digits", "5-5", a.setting, a.method)
    work = Path(a.work) / a.method / a.setting / f"seed{a.seed}"
    prev = None
    for k in plan.steps("digits", "5-5", a.method):
        theirs = Path(plan.step_dir(cell, a.seed, k)) / "metrics.json"
        group = as_written.group(cell, k, a.seed)
        if group is not None:
            ckpt = Path(as_written.shared_dir("digits", group, a.seed).replace(
                as_written.results, str(results), 1)) / "model.pt"
            if not ckpt.is_file():
                raise SystemExit(f"shared step {k} not in {results}: {ckpt}")
            source = f"shared, from {ckpt.parent}"
        else:
            ckpt = work / f"step{k}" / "model.pt"
            if not ckpt.is_file():
                train_step(plan.run(cell, k, a.seed), ckpt, prev=prev)
            source = "trained here"
        m, _ = evaluate_checkpoint(ckpt, device="cpu")
        new = "-" if m["miou_new"] is None else f"{100 * m['miou_new']:.1f}"
        print(f"{a.method} {a.setting} seed {a.seed} step {k} ({source}): "
              f"old {100 * m['miou_old']:.1f} / new {new}; "
              f"in {results.name}: {figures(theirs)}", flush=True)
        prev = str(ckpt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
