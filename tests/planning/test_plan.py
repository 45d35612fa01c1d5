"""The plan (ucd/planning/plan.py): which trainings are shared, per seed, and whether sharing is
sound.

A shared step 0 must be one per (dataset, setting, step-0 classes, later classes, seed), a
shared Joint one per (dataset, seed); group names are a function of what is trained."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ucd.planning.plan import Cell, Plan, canonical_task

REPO = Path(__file__).resolve().parents[2]


def config(benchmarks: list[str], methods: list[str], seeds=(42,), **extra) -> dict:
    """config.yaml with its grid replaced (and other top-level keys)."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["grid"] = [{"benchmarks": benchmarks, "methods": methods}]
    cfg["seeds"] = list(seeds)
    cfg.update(copy.deepcopy(extra))
    return cfg


def cell(text: str) -> Cell:
    return Cell(*text.split("/"))


def groups(plan: Plan, seed: int = 42) -> dict[str, str | None]:
    """Cell path -> the group of its step 0 (None: trained by the cell itself)."""
    return {c.path: plan.group(c, 0, seed) for c in plan.cells}


def test_canonical_task_joins_tasks_with_the_same_step0_and_later_classes():
    assert canonical_task("digits", "5-5") == canonical_task("digits", "5-1")
    others = {canonical_task("digits", t) for t in ("5-5", "8-2", "6-4")}
    assert len(others) == 3  # 8-2 and 6-4 learn other classes at step 0
    assert canonical_task("voc", "15-5") == canonical_task("voc", "15-1")
    assert canonical_task("voc", "15-5") != canonical_task("voc", "19-1")


@pytest.mark.parametrize("setting", ["disjoint", "overlapped"])
def test_tasks_sharing_step0_have_the_same_step0_images(tiny_digits, setting):
    """Sharing 5-5's step 0 with 5-1 is sound: the split scan gives the same images."""
    from ucd.data.splits import compute_split

    ids = {task: compute_split("digits", tiny_digits, task, setting, workers=1,
                               progress=False)["ids"][0] for task in ("5-5", "5-1", "8-2")}
    assert ids["5-5"] and ids["5-5"] == ids["5-1"]
    assert ids["8-2"] != ids["5-5"]  # the check can tell splits apart


def test_one_shared_step0_per_setting_classes_and_seed():
    benches = ["digits/5-5/disjoint", "digits/5-1/disjoint", "digits/5-5/overlapped",
               "digits/5-1/overlapped", "digits/8-2/disjoint"]
    plan = Plan(config(benches, ["ft", "mib", "ucd"], seeds=[1, 2]))
    g = groups(plan)
    assert len(set(g.values())) == 3  # 5-x disjoint, 5-x overlapped, 8-2 disjoint
    assert g["digits/5-5/disjoint/mib"] == g["digits/5-1/disjoint/ucd"]
    assert g["digits/5-5/disjoint/ft"] != g["digits/5-5/overlapped/ft"]
    assert g["digits/8-2/disjoint/mib"] != g["digits/5-5/disjoint/mib"]
    assert len(plan.shared_trainings()) == 3 * 2
    # a step 1 reads the shared checkpoint of its own seed
    for seed in (1, 2):
        ckpt = plan.checkpoint(cell("digits/5-1/disjoint/mib"), seed, 0)
        assert ckpt == (f"results/digits/_shared/{g['digits/5-1/disjoint/mib']}/seed{seed}"
                        "/step0/model.pt")


def test_shared_step0_trains_the_canonical_tasks_step0_split():
    plan = Plan(config(["digits/5-1/overlapped"], ["mib"]))
    shared = plan.shared_run(cell("digits/5-1/overlapped/mib"), 0, 42)
    assert (shared.task, shared.method, shared.step) == (canonical_task("digits", "5-1"), "ft", 0)
    assert shared.data.split == f"results/splits/digits/{shared.task}/overlapped.json"
    assert plan.shared_run(cell("digits/5-1/overlapped/mib"), 1, 42) is None


def test_joint_is_one_training_per_dataset_and_seed():
    benches = ["digits/5-5/disjoint", "digits/5-5/overlapped", "digits/8-2/disjoint"]
    plan = Plan(config(benches, ["joint", "ft"], seeds=[42, 43]))
    joint = {plan.group(c, 0, 42) for c in plan.cells if c.method == "joint"}
    assert len(joint) == 1 and next(iter(joint)).startswith("joint-")
    assert plan.steps("digits", "5-5", "joint") == (0,)
    kinds = [g.split("-")[0] for (_, g, _) in plan.shared_trainings()]
    assert kinds.count("joint") == 2  # one per seed
    assert kinds.count("step0") == 3 * 2


def test_seeds_multiply_the_trainings():
    one = Plan(config(["digits/5-5/disjoint"], ["ft", "mib", "ewc"], seeds=[7]))
    three = Plan(config(["digits/5-5/disjoint"], ["ft", "mib", "ewc"], seeds=[7, 8, 9]))
    assert len(three.shared_trainings()) == 3 * len(one.shared_trainings()) == 3
    assert len(three.metrics()) == 3 * len(one.metrics()) == 3 * 3 * 2
    assert three.finals()[:3] == [f"results/digits/5-5/disjoint/ft/seed{s}/final"
                                  for s in (7, 8, 9)]
    assert {three.run(cell("digits/5-5/disjoint/mib"), 1, s).seed for s in (7, 8, 9)} == {7, 8, 9}
    # the same training under another seed: the same group name, another directory
    c = cell("digits/5-5/disjoint/mib")
    assert three.group(c, 0, 7) == three.group(c, 0, 9)
    assert three.checkpoint(c, 7, 0) != three.checkpoint(c, 9, 0)


def test_label_policy_after_step0_does_not_split_the_shared_step0():
    plan = Plan(config(["digits/5-5/disjoint"], ["ft", "mib", "plop"]))
    g = groups(plan)
    run = plan.run(cell("digits/5-5/disjoint/mib"), 0, 42)
    assert run.labels.ignore_to_background == "incremental"  # mib's own policy differs...
    assert plan.run(cell("digits/5-5/disjoint/plop"), 0, 42).labels.ignore_to_background == (
        "never")
    assert g["digits/5-5/disjoint/mib"] == g["digits/5-5/disjoint/plop"]  # ...not at step 0
    assert g["digits/5-5/disjoint/ft"] == g["digits/5-5/disjoint/mib"]


def test_label_policy_always_trains_its_own_step0():
    always = [{"match": {"method": "plop"}, "labels": {"ignore_to_background": "always"}}]
    plan = Plan(config(["digits/5-5/disjoint"], ["mib", "plop"], overrides=always))
    g = groups(plan)
    assert g["digits/5-5/disjoint/plop"] != g["digits/5-5/disjoint/mib"]
    shared = plan.shared_run(cell("digits/5-5/disjoint/plop"), 0, 42)
    assert shared.ignore_to_background and shared.step == 0


def test_group_names_are_stable_and_follow_step0_settings():
    base = config(["digits/5-5/disjoint"], ["mib", "joint"])
    names = sorted(groups(Plan(base)).values())
    assert names == sorted(groups(Plan(copy.deepcopy(base))).values())
    assert all(len(n.split("-")[1]) == 10 for n in names)

    def changed(**digits) -> list[str]:
        cfg = copy.deepcopy(base)
        for section, values in digits.items():
            cfg["datasets"]["digits"].setdefault(section, {}).update(values)
        return sorted(groups(Plan(cfg)).values())

    lr0 = changed(optim={"lr": 0.05})
    assert lr0[0] != names[0] and lr0[1] != names[1]  # step 0's rate: both trainings change
    assert changed(incremental={"optim": {"lr": 0.05}}) == names  # steps >= 1 only
    assert changed(data={"num_workers": 3}) == names  # does not change what is computed
    assert changed(model={"width": 8, "pretrained": None}) != names


def test_own_step0_methods_are_not_shared():
    plan = Plan(config(["digits/5-5/disjoint"], ["ewc", "pi", "rw", "sdr", "mib_sdr"]))
    assert set(groups(plan).values()) == {None}
    c = cell("digits/5-5/disjoint/ewc")
    assert plan.checkpoint(c, 42, 0) == "results/digits/5-5/disjoint/ewc/seed42/step0/model.pt"
    assert plan.shared_trainings() == {}


def test_the_shared_step0_takes_the_owners_configured_parameters():
    """method_params.ft reaches the step 0 that ft shares with the other plain methods."""
    from ucd.planning.plan import Cell, Plan

    config = {"results": "results", "datasets": {"digits": {"root": "x"}},
              "grid": [{"benchmarks": ["digits/5-5/disjoint"], "methods": ["ft", "mib"]}],
              "method_params": {"ft": {"ce": {"weight": 2.0}}}}
    plan = Plan(config)
    for method in ("ft", "mib"):
        shared = plan.shared_run(Cell("digits", "5-5", "disjoint", method), 0, 42)
        assert shared.params == {"ce": {"weight": 2.0}}
    assert len({plan.group(Cell("digits", "5-5", "disjoint", m), 0, 42)
                for m in ("ft", "mib")}) == 1
