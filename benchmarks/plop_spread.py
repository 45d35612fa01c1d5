"""Which part of PLOP makes its old classes swing between seeds (issue 23, item 4).

In round 2 (design "v3" of benchmarks/miniature_frontier.py: 48-px images, 95 % of them one
digit, lr 0.02 then 0.01, 3 then 2 epochs, batch 16), PLOP's old-class mIoU after step 1 of
digits 5-5 differed by 24-28 points between seeds 42 and 43. A step-1 run depends on its seed
through three things only: the step-0 checkpoint (trained with that seed), the step's data
order and augmentation (``make_loader``: seed + 1000 * step), and PLOP's per-class entropy
thresholds (computed before the step with the old model on that data). The new head's MiB
init copies the background row, so it depends on the checkpoint only (checked below).

This script trains step 0 for both seeds once, then PLOP's step 1 for every crossing of
(checkpoint seed, data seed, seed of the model the thresholds were computed with), with the
thresholds fixed from outside, and also with thresholds read as PLOP's own code reads them
("official"). It records the per-class thresholds each seed computes and the old/new
confusion of each step-0 model, and prints one table. Everything runs in this process, one
torch thread, through the real engine (``ucd.training.engine.train_step``) and evaluation.

    python benchmarks/plop_spread.py                      # disjoint, seeds 42 43
    python benchmarks/plop_spread.py --setting overlapped

Results: ``<work>/plop_spread_<setting>.json`` and the printed table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from miniature_frontier import DESIGNS, merged  # noqa: E402

from ucd.data.digits import generate  # noqa: E402
from ucd.data.splits import compute_split, save_split  # noqa: E402
from ucd.data.step import make_dataset  # noqa: E402
from ucd.evaluation.evaluate import Predictions, confusion, evaluate_checkpoint  # noqa: E402
from ucd.losses.plop_pseudo import EntropyHistogram, normalized_entropy  # noqa: E402
from ucd.methods.terms.classification import PlopPseudoCE  # noqa: E402
from ucd.models import build_model  # noqa: E402
from ucd.planning.plan import Cell, Plan  # noqa: E402
from ucd.training.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from ucd.training.engine import prepare_model, seed_everything, set_up, train_step  # noqa: E402


def make_plan(work: Path, setting: str, seeds: list[int],
              step1_lr: float | None = None) -> tuple[Plan, Cell]:
    """The v3 data (generated once) and a plan of PLOP on digits 5-5 ``setting`` (with
    ``step1_lr``: v3 with that learning rate at step 1)."""
    import yaml

    design = DESIGNS["v3"]
    root = work / "data"
    if not (root / "meta.json").is_file():
        generate(root, seed=0, progress=False, **design["generator"])
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    digits = merged(config["datasets"]["digits"], design["digits"])
    if step1_lr is not None:
        digits = merged(digits, {"incremental": {"optim": {"lr": step1_lr}}})
    digits.update(root=str(root), train={**digits.get("train", {}), "device": "cpu"})
    config.update(results=str(work), seeds=seeds, datasets={"digits": digits},
                  grid=[{"benchmarks": [f"digits/5-5/{setting}"], "methods": ["plop"]}])
    split = work / "splits" / "digits" / "5-5" / f"{setting}.json"
    if not split.is_file():
        save_split(compute_split("digits", root, "5-5", setting, workers=1, progress=False),
                   split)
    return Plan(config), Cell("digits", "5-5", setting, "plop")


def step0(plan: Plan, cell: Cell, seed: int, work: Path) -> tuple[Path, dict[str, Any]]:
    """Step 0 of ``seed`` (trained once), its checkpoint and old/new-confusion figures."""
    ckpt = work / "step0" / f"seed{seed}" / "model.pt"
    if not ckpt.is_file():
        train_step(plan.shared_run(cell, 0, seed) or plan.run(cell, 0, seed), ckpt)
    m, _ = evaluate_checkpoint(ckpt, device="cpu")
    return ckpt, {"old": pct(m["miou_old"]), "unseen_as_bg": pct(m["unseen_as_background"]),
                  "unseen_as_old": pct(m["unseen_as_seen_class"])}


def relabelled(ckpt: Path, seed: int, work: Path) -> Path:
    """A copy of a step-0 checkpoint whose config names ``seed`` (the engine refuses a
    previous step of another seed; the weights are unchanged)."""
    out = work / "relabelled" / f"{ckpt.parent.name}_as{seed}" / "model.pt"
    if not out.is_file():
        payload = load_checkpoint(ckpt)
        payload["config"] = {**payload["config"], "seed": seed}
        for key in ("format", "config_hash"):
            payload.pop(key, None)
        save_checkpoint(out, payload)
    return out


def thresholds(plan: Plan, cell: Cell, model_seed: int, data_seed: int,
               ckpts: dict[int, Path], work: Path) -> dict[str, list[float]]:
    """Per-class thresholds (normalised-entropy scale) that the step-0 model of
    ``model_seed`` gives on the step-1 data of ``data_seed``: ours (histogram median), PLOP's
    reading (official), the exact median of the entropies, and the floor."""
    run = plan.run(cell, 1, data_seed)
    step = set_up(run, work / "scratch" / "model.pt", relabelled(ckpts[model_seed], data_seed,
                                                                  work))
    ctx = step.ctx
    term = next(t for t in step.terms if t.name == "plop_pseudo")
    t_k = ctx.n_old + len(ctx.new_classes)
    ours = EntropyHistogram(ctx.n_old)
    official = EntropyHistogram(ctx.n_old, scale=1.0 / (ctx.n_old * math.log(t_k)))
    values: list[list[torch.Tensor]] = [[] for _ in range(ctx.n_old)]
    with torch.no_grad():
        for images, labels in ctx.loader:
            logits = ctx.old_model(images)["logits"]
            ours.update(logits, labels)
            official.update(logits, labels)
            probs = torch.softmax(logits.float(), 1)
            bg = labels == 0
            ent, cls = normalized_entropy(probs)[bg], probs.argmax(1)[bg]
            for c in range(ctx.n_old):
                values[c].append(ent[cls == c])
    floor = term.floor(ctx)
    exact = [torch.cat(v).median().item() if sum(x.numel() for x in v) else 0.0
             for v in values]
    return {"median": ours.thresholds(min_threshold=floor).tolist(),
            "official": official.thresholds(min_threshold=floor, method="official").tolist(),
            "exact": [max(x, floor) for x in exact],
            "pixels": ours.counts.view(ctx.n_old, -1).sum(1).tolist(), "floor": floor}


class FixedThresholds:
    """Within the block, PLOP's term takes the given thresholds instead of computing them."""

    def __init__(self, values: list[float]) -> None:
        self.values = torch.tensor(values)

    def __enter__(self) -> None:
        self.saved = PlopPseudoCE.before_step
        values = self.values

        def before_step(term: PlopPseudoCE, ctx: Any) -> None:
            term.thresholds = values.clone()

        PlopPseudoCE.before_step = before_step

    def __exit__(self, *exc: object) -> None:
        PlopPseudoCE.before_step = self.saved


def step1(plan: Plan, cell: Cell, ckpt_seed: int, data_seed: int, thr: list[float] | None,
          ckpts: dict[int, Path], work: Path, name: str) -> dict[str, Any]:
    """PLOP's step 1 from the checkpoint of ``ckpt_seed`` on the data order of ``data_seed``
    with thresholds ``thr`` (None: its own); old/new mIoU, per-class IoU, old pixels predicted
    as new."""
    out = work / "step1" / name / "model.pt"
    if not out.is_file():
        run, prev = plan.run(cell, 1, data_seed), relabelled(ckpts[ckpt_seed], data_seed, work)
        if thr is None:  # PLOP computes its own thresholds, as in a normal run
            train_step(run, out, prev=prev)
        else:
            with FixedThresholds(thr):
                train_step(run, out, prev=prev)
    m, _ = evaluate_checkpoint(out, device="cpu")
    cm = torch.tensor(m["confusion_matrix"], dtype=torch.float64)
    old, new = m["base_classes"], m["new_classes"]
    old_rows = cm[old]
    return {"old": pct(m["miou_old"]), "new": pct(m["miou_new"]),
            "old_as_new": pct((old_rows[:, new].sum() / old_rows.sum()).item()),
            "old_as_bg": pct((old_rows[:, 0].sum() / old_rows.sum()).item()),
            "iou_old": [pct(m["iou"][str(c)]) for c in old]}


def head_init_check(plan: Plan, cell: Cell, ckpts: dict[int, Path], seeds: list[int],
                    work: Path) -> float:
    """Largest difference between the classifiers built for step 1 from one checkpoint under
    two run seeds (0 when the new head's init depends on the checkpoint only)."""
    heads = []
    for s in seeds:
        run = plan.run(cell, 1, s)
        seed_everything(run.seed + run.step)
        model, _, _ = prepare_model(run, relabelled(ckpts[seeds[0]], s, work))
        heads.append(torch.cat([p.flatten() for p in model.classifier.parameters()]))
    return (heads[0] - heads[1]).abs().max().item()


def shares(ckpt: Path, rows: list[int], cols: list[int]) -> list[list[float]]:
    """% of the validation pixels of each class in ``rows`` that the checkpoint predicts as
    each class in ``cols`` (every class labelled, 5-5's last step)."""
    payload = load_checkpoint(ckpt)
    run = payload["config"]
    model = build_model(_model_config(run), payload["classes"], pretrained=False)
    model.load_state_dict(payload["model"])
    model.eval()
    ds = make_dataset("digits", run["data"]["root"], "5-5", run["setting"], 1, "val",
                      crop_size=run["data"]["crop_size"], train_augment=False)
    with torch.no_grad():
        cm = confusion(model, ds, payload["classes"], 11, torch.device("cpu"), 50,
                       Predictions(ds.ids, 0)).double()
    return [[round(100 * (cm[r, c] / cm[r].sum()).item(), 1) for c in cols] for r in rows]


def _model_config(run: dict[str, Any]) -> Any:
    from ucd.facts.config import RunConfig

    return RunConfig.from_dict(run).model


def confusions(ckpts: dict[int, Path], work: Path, seeds: list[int]) -> dict[str, Any]:
    """Which old class each step-0 model calls the new digits (rows 6-10, columns 0-5), and
    which new class each own-seed step-1 model calls the old digits (rows 1-5, columns 6-10)."""
    out: dict[str, Any] = {}
    for s in seeds:
        out[f"step0_seed{s}_new_as"] = shares(ckpts[s], list(range(6, 11)), list(range(6)))
        step1_ckpt = work / "step1" / f"c{s}_d{s}_t{s}" / "model.pt"
        out[f"step1_c{s}_d{s}_old_as"] = shares(step1_ckpt, list(range(1, 6)),
                                                list(range(6, 11)))
    return out


def pct(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(100 * x, 1)


def variants(seeds: list[int], extra: list[int]) -> list[tuple[str, int, int, int, str]]:
    """(name, checkpoint seed, data seed, thresholds' model seed, reading): every crossing with
    our thresholds, each seed's own run with PLOP's reading, then each checkpoint on the data
    orders of the ``extra`` seeds (thresholds computed by the run itself: reading "own")."""
    rows = [(f"c{c}_d{d}_t{t}", c, d, t, "median")
            for c in seeds for d in seeds for t in seeds]
    rows += [(f"c{s}_d{s}_t{s}_official", s, s, s, "official") for s in seeds]
    rows += [(f"c{c}_d{d}_own", c, d, c, "own") for c in seeds for d in extra]
    return rows


def run_all(setting: str, seeds: list[int], extra: list[int], work: Path) -> dict[str, Any]:
    """The whole experiment; results as a dict (also written as JSON, and reused from there:
    a rerun with more ``extra`` seeds trains and measures only what is new)."""
    plan, cell = make_plan(work, setting, [*seeds, *extra])
    saved = work / f"plop_spread_{setting}.json"
    old = json.loads(saved.read_text()) if saved.is_file() else {}
    result: dict[str, Any] = {"setting": setting, "seeds": seeds, "step0": {},
                              "thresholds": {}, "step1": {}}
    ckpts = {}
    for s in seeds:
        ckpts[s], result["step0"][str(s)] = step0(plan, cell, s, work)
        print("step0", s, result["step0"][str(s)], flush=True)
    result["head_init_max_diff"] = head_init_check(plan, cell, ckpts, seeds, work)
    thr = {}
    for m in seeds:
        for d in seeds:
            key = f"model{m}_data{d}"
            thr[m, d] = old.get("thresholds", {}).get(key) or thresholds(
                plan, cell, m, d, ckpts, work)
            result["thresholds"][key] = thr[m, d]
            print("thresholds", m, d, thr[m, d], flush=True)
    for name, c, d, t, reading in variants(seeds, extra):
        row = old.get("step1", {}).get(name) or {
            "ckpt": c, "data": d, "thr_model": t, "reading": reading,
            **step1(plan, cell, c, d, None if reading == "own" else thr[t, d][reading],
                    ckpts, work, name)}
        result["step1"][name] = row
        print("step1", name, row, flush=True)
        saved.write_text(json.dumps(result, indent=1))
    result["confusion"] = old.get("confusion") or confusions(ckpts, work, seeds)
    if "lr_check" in old:
        result["lr_check"] = old["lr_check"]
    saved.write_text(json.dumps(result, indent=1))
    return result


def show(result: dict[str, Any]) -> None:
    """Print the tables."""
    print(f"\nPLOP, digits 5-5 {result['setting']} (design v3), step 0:")
    for s, r in result["step0"].items():
        print(f"  seed {s}: old {r['old']}, new digits called background {r['unseen_as_bg']} %,"
              f" an old class {r['unseen_as_old']} %")
    print(f"new head init, largest difference between run seeds: {result['head_init_max_diff']}")
    print("\nthresholds (normalised entropy), classes 0-5; pixels per class:")
    for key, t in result["thresholds"].items():
        for reading in ("median", "official", "exact"):
            vals = " ".join(f"{v:7.4f}" for v in t[reading])
            print(f"  {key:<16} {reading:<8} {vals}")
        print(f"  {key:<16} {'pixels':<8} {' '.join(f'{v:7d}' for v in t['pixels'])}")
    for key, m in result["confusion"].items():
        print(f"{key}: " + "; ".join(" ".join(f"{v:5.1f}" for v in row) for row in m))
    print(f"\n{'run':<22} {'ckpt':>4} {'data':>4} {'thr':>4} {'old':>6} {'new':>6} "
          f"{'old->new':>8} {'old->bg':>7}  old IoU per class")
    for name, r in result["step1"].items():
        print(f"{name:<22} {r['ckpt']:>4} {r['data']:>4} {r['thr_model']:>4} {r['old']:>6} "
              f"{r['new']:>6} {r['old_as_new']:>8} {r['old_as_bg']:>7}  {r['iou_old']}")


def lr_check(setting: str, seeds: list[int], lr: float, work: Path) -> dict[str, Any]:
    """Each seed's own step 1 (its checkpoint, data order and thresholds) with step 1 at
    ``lr`` instead of v3's 0.01: does the spread survive a smaller step?"""
    plan, cell = make_plan(work, setting, seeds, step1_lr=lr)
    ckpts = {s: work / "step0" / f"seed{s}" / "model.pt" for s in seeds}
    rows = {}
    for c in seeds:
        name = f"c{c}_d{c}_own_lr{lr:g}"
        rows[name] = {"ckpt": c, "data": c, "thr_model": c, "reading": f"own, lr {lr:g}",
                      **step1(plan, cell, c, c, None, ckpts, work, name)}
        print("step1", name, rows[name], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setting", default="disjoint", choices=["disjoint", "overlapped"])
    p.add_argument("--seeds", type=int, nargs=2, default=[42, 43])
    p.add_argument("--extra-data-seeds", type=int, nargs="*", default=[44, 45],
                   help="more data orders for each checkpoint (PLOP's own thresholds)")
    p.add_argument("--step1-lr", type=float, default=None,
                   help="also run the seeds' crossing with this step-1 learning rate")
    p.add_argument("--work", default="results/plop_spread", help="scratch directory")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    work = Path(a.work) / a.setting
    result = run_all(a.setting, a.seeds, a.extra_data_seeds, work)
    if a.step1_lr is not None:
        key = f"lr{a.step1_lr:g}"
        result.setdefault("lr_check", {})[key] = result.get("lr_check", {}).get(key) or \
            lr_check(a.setting, a.seeds, a.step1_lr, work)
        result["step1"].update(result["lr_check"][key])
        (work / f"plop_spread_{a.setting}.json").write_text(json.dumps(result, indent=1))
    show(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
