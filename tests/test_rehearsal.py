"""config/rehearsal.yaml is the paper's grid at another scale, nothing else.

Both grids are resolved with ucd.planning.plan.Plan (config.yaml + config/paper.yaml, and the same +
config/rehearsal.yaml) and compared run config by run config, field by field: a field outside
SCALE_KEYS that differs fails (a per-row convention the rehearsal would not rehearse). Paths
may differ only by the results folder (and a replay set's images per class). The two DAGs must
have the same cells, steps and sharing (which cells' steps reuse one training, up to the
renaming of the groups that the scale keys cause), the same replay sets, and the same jobs in a
Snakemake dry run, plus the rehearsal's fixture generation. On the fixtures, every step of
every run has at least a batch of training images (the engine refuses fewer)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.conftest import flat
from ucd.data.fixtures import generate
from ucd.data.splits import compute_split
from ucd.facts.config import IDENTITY, deep_merge
from ucd.methods import get_method
from ucd.planning.plan import Plan
from ucd.training.distributed import accumulation_steps
from ucd.training.engine import contrast_group

REPO = Path(__file__).resolve().parents[1]
SEED = 42
# What the rehearsal may change: the scale of the model, of the data and of the training, and
# where things are; never a method, a label policy, a precision or a term's weight.
SCALE_KEYS = frozenset({
    "model.backbone", "model.width", "model.head_channels", "model.output_stride",
    "model.aspp_rates", "model.pretrained",
    "optim.epochs", "optim.batch_size",
    "data.root", "data.split", "data.replay", "data.crop_size", "data.num_workers",
    "train.threads", "train.per_gpu_batch",
    "eval.batch_size",
    "params.recall_ce.images_per_class",
})  # fmt: skip
PATH_KEYS = ("data.split", "data.replay")


def load(*names: str) -> dict:
    out: dict = {}
    for name in ("config.yaml", *names):
        out = deep_merge(out, yaml.safe_load((REPO / name).read_text()))
    return out


@pytest.fixture(scope="module")
def plans() -> tuple[Plan, Plan]:
    paper = Plan(load("config/paper.yaml"))
    rehearsal = Plan(load("config/paper.yaml", "config/rehearsal.yaml"))
    paper.check()
    rehearsal.check()
    return paper, rehearsal


def normalised_path(value: str | None, results: str) -> str | None:
    """A results path without its results folder and a replay set's images per class."""
    if value is None:
        return None
    assert value.startswith(f"{results}/"), (value, results)
    return re.sub(r"/n[0-9]+$", "/n<N>", value[len(results) + 1:])


def differences(paper, rehearsal, results: tuple[str, str]) -> dict[str, tuple]:
    """Fields where two run configs differ, beyond the scale keys and the results folder."""
    mine, theirs = flat(rehearsal.to_dict()), flat(paper.to_dict())
    for key in PATH_KEYS:
        theirs[key] = normalised_path(theirs[key], results[0])
        mine[key] = normalised_path(mine[key], results[1])
    return {k: (theirs.get(k), mine.get(k)) for k in mine.keys() | theirs.keys()
            if mine.get(k) != theirs.get(k) and (k not in SCALE_KEYS or k in PATH_KEYS)}


def test_the_rehearsal_runs_the_paper_grid_with_its_seed_count(plans):
    paper, rehearsal = plans
    assert rehearsal.cells == paper.cells and len(paper.cells) > 200
    assert len(rehearsal.seeds) == 1 == len(paper.seeds)
    for cell in paper.cells:
        steps = (cell.dataset, cell.task, cell.method)
        assert rehearsal.steps(*steps) == paper.steps(*steps), cell


def test_every_run_config_differs_from_the_papers_only_in_scale_keys(plans):
    paper, rehearsal = plans
    results = (paper.results, rehearsal.results)
    changed: set[str] = set()
    for cell in paper.cells:
        for step in paper.steps(cell.dataset, cell.task, cell.method):
            mine, theirs = rehearsal.run(cell, step, SEED), paper.run(cell, step, SEED)
            assert differences(theirs, mine, results) == {}, (cell, step)
            changed |= {k for k, v in flat(mine.to_dict()).items()
                        if flat(theirs.to_dict()).get(k) != v}
            shared = (paper.shared_run(cell, step, SEED), rehearsal.shared_run(cell, step, SEED))
            assert (shared[0] is None) == (shared[1] is None), (cell, step)
            if shared[0] is not None:
                assert differences(*shared, results) == {}, ("shared", cell, step)
    assert not set(IDENTITY) & changed
    assert {"model.width", "optim.epochs", "data.root", "data.crop_size"} <= changed


def test_the_same_cells_share_the_same_trainings(plans):
    """Groups are named by a hash of what they train, so the scale renames them: the
    partition of (cell, step) by group must be the same, group for group."""
    paper, rehearsal = plans
    rename: dict[str, str] = {}
    for cell in paper.cells:
        for step in paper.steps(cell.dataset, cell.task, cell.method):
            theirs, mine = paper.group(cell, step, SEED), rehearsal.group(cell, step, SEED)
            assert (theirs is None) == (mine is None), (cell, step)
            if theirs is not None:
                assert rename.setdefault(theirs, mine) == mine, (cell, step, theirs, mine)
    assert len(set(rename.values())) == len(rename) == len(paper.shared_trainings())


def test_the_same_replay_sets_serve_the_same_steps(plans):
    paper, rehearsal = plans
    theirs = {normalised_path(p, paper.results): v for p, v in paper.replay_sets().items()}
    mine = {normalised_path(p, rehearsal.results): v for p, v in rehearsal.replay_sets().items()}
    assert mine == theirs and len(mine) > 10


def test_every_step_has_a_batch_of_fixture_images(plans, tmp_path):
    """The engine refuses a step with fewer training images than its batch: on the fixtures
    every step of every run (Figure 11's batch variants included) has enough."""
    _, rehearsal = plans
    counts = {}
    for dataset, task, setting in sorted({c[:3] for c in rehearsal.cells}):
        if not (tmp_path / dataset).exists():
            generate(dataset, tmp_path / dataset)
        split = compute_split(dataset, tmp_path / dataset, task, setting, workers=1,
                              progress=False)
        counts[dataset, task, setting] = split["counts"]
    for cell in rehearsal.cells:
        for step in rehearsal.steps(cell.dataset, cell.task, cell.method):
            run = rehearsal.run(cell, step, SEED)
            if get_method(run.base_method).joint:
                continue  # Joint trains on every image
            assert counts[cell[:3]][step] >= run.optim.batch_size, (cell, step)


def test_every_run_of_the_rehearsal_can_batch_on_its_device(plans):
    """What the engine checks when a job starts, checked for every run before any job: the
    global batch splits over the rehearsal's processes (no GPU: one) and its micro-batches, and
    a contrastive term sees the whole batch (a per-row per_gpu_batch would break that)."""
    _, rehearsal = plans
    world = int(rehearsal.config["resources"]["train"].get("gpus") or 1)
    for cell in rehearsal.cells:
        for step in rehearsal.steps(cell.dataset, cell.task, cell.method):
            # a shared step trains the shared run only (the cell's own run never trains)
            run = rehearsal.shared_run(cell, step, SEED) or rehearsal.run(cell, step, SEED)
            accum = accumulation_steps(run.optim.batch_size, world, run.train.per_gpu_batch)
            terms = get_method(run.base_method).build_terms(run.params, run.step)
            contrast_group(terms, run, world, accum)


def test_the_comparison_catches_a_changed_convention(plans):
    """The check can fail: a label policy, a term weight or a precision set by the rehearsal
    is a difference; a width or an epoch count is not."""
    paper, _ = plans
    cell = next(c for c in paper.cells if c.method == "mib")
    run = paper.run(cell, 1, SEED)
    results = (paper.results, paper.results)
    scaled = run.replace(model=replace(run.model, width=8), optim=replace(run.optim, epochs=1))
    assert differences(run, scaled, results) == {}
    for changed, key in [
        (run.replace(labels=replace(run.labels, ignore_to_background="never")),
         "labels.ignore_to_background"),
        (run.replace(params={**run.params, "mib_kd": {**run.params["mib_kd"], "weight": 100.0}}),
         "params.mib_kd.weight"),
        (run.replace(train=replace(run.train, amp="fp16" if run.train.amp == "none" else "none")),
         "train.amp"),
    ]:
        assert set(differences(run, changed, results)) == {key}


def dry_run_jobs(tmp_path: Path, *configs: str) -> dict[str, int]:
    """Jobs per rule of `snakemake -n all_tables` with these config files."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "-n", "all_tables", "--quiet", "rules", "--configfile",
         *(str(REPO / c) for c in configs)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    table = (proc.stdout + proc.stderr).split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.slow
def test_the_two_dags_have_the_same_jobs_plus_the_fixtures(tmp_path):
    paper = dry_run_jobs(tmp_path / "p", "config/paper.yaml")
    rehearsal = dry_run_jobs(tmp_path / "r", "config/paper.yaml", "config/rehearsal.yaml")
    assert rehearsal.pop("generate_data") == 3  # VOC, ADE20K and Cityscapes fixtures
    assert rehearsal.pop("decode_data") == 3  # ... decoded once for every job (generated data)
    assert rehearsal == paper and paper["train"] > 600
