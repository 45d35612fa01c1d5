"""The workflow passes `snakemake --lint` and `snakefmt --check`, and the paper's whole grid
(Tables 1-9, Figures 10-11) builds its DAG without any data present."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import pytest
from workflow_helpers import REPO, SNAKEFILE, by_rule, dry_run, paper_config, snakemake


def test_lint_is_clean(tmp_path):
    proc = snakemake(tmp_path, "--lint")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Lints for" not in out and "in a good condition" in out


def test_snakefmt_check():
    pytest.importorskip("snakefmt")
    cmd = [sys.executable, "-m", "snakefmt", "--check", str(SNAKEFILE), str(REPO / "workflow")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_paper_grid_dag_without_data(tmp_path):
    start = time.monotonic()
    jobs = dry_run(tmp_path, "all_tables", "--configfile", str(REPO / "config" / "paper.yaml"))
    elapsed = time.monotonic() - start
    counts = Counter(j.rule for j in jobs)
    print("paper grid jobs per rule:", dict(counts), f"({elapsed:.1f} s)")
    assert elapsed < 60  # acceptance: < 20 s on an idle machine; margin for a busy CI
    assert "generate_data" not in counts  # real datasets are read, not generated
    benches = {(j.wildcards["dataset"], j.wildcards["task"], j.wildcards["setting"])
               for j in by_rule(jobs, "split")}
    assert ("voc", "15-1", "disjoint") in benches and ("ade", "100-10", "overlapped") in benches
    assert ("cityscapes", "13-1", "overlapped") in benches
    trained = {(j.wildcards["dataset"], j.wildcards["task"], j.wildcards["setting"],
                j.wildcards["method"]) for j in by_rule(jobs, "train")}
    # Cells of Tables 1, 5, 8, 9 and Figures 10-11 (variants included); Inc.Seg is
    # reference-only, RECALL is trained (Tables 1-2) on its replay sets.
    for cell in [("voc", "15-1", "overlapped", "plop_ucd"), ("cityscapes", "13-6", "overlapped",
                 "mib_ucd"), ("voc", "15-5", "disjoint", "mib_ucd-tau0.1"),
                 ("voc", "19-1", "disjoint", "mib_ucd-lam0.0001"),
                 ("voc", "15-1", "disjoint", "mib_ucd-tau0.01"),
                 ("voc", "15-5", "disjoint", "mib-bs2")]:
        assert cell in trained, cell
    assert not any(c[3] == "incseg" for c in trained)
    assert ("voc", "15-1", "overlapped", "recall") in trained
    replay = {j.output[0] for j in by_rule(jobs, "replay_set")}
    assert "results/replay/voc/15-1/overlapped/step5/n500" in replay
    # Multi-step tasks: every step of a chain, e.g. ADE 100-10 has steps 1..5 after step 0.
    assert {int(j.wildcards["step"]) for j in by_rule(jobs, "train")
            if j.wildcards["task"] == "100-10" and j.wildcards["method"] == "mib_ucd"} == set(
                range(1, 6))
    # Importance-based methods train their own step 0; the others share one per (dataset,
    # setting, step-0 classes, later classes), batch-size variants one per size; Joint one per
    # dataset.
    own0 = {j.wildcards["method"] for j in by_rule(jobs, "train") if j.wildcards["step"] == "0"}
    assert {"pi", "ewc", "rw", "sdr", "mib_sdr", "lwf_mc"} == own0
    groups = Counter(j.wildcards["group"].split("-")[0] for j in by_rule(jobs, "train_shared"))
    assert groups["joint"] == len({b[0] for b in benches})
    # config/paper.yaml gives the MiB-code rows MiB's loader (255 -> 0 at step 0 too): their
    # step 0 differs from the others'; Figure 11's batch sizes train a step 0 each.
    config = paper_config()
    sharing = {(step0_training(*c[:3]), *step0_settings(config, c))
               for c in trained_step0(jobs)}
    assert groups["step0"] == len(sharing)
    assert len(groups) == 2
    assert counts["table"] == counts["table_compare"] == 9 and counts["figure"] == 2


def trained_step0(jobs) -> set[tuple[str, str, str, str]]:
    """The cells whose step 0 is a shared step-0 training (not Joint, not their own)."""
    from ucd.methods import get_method
    from ucd.planning.plan import Plan

    plan = Plan(paper_config())
    cells = {(j.wildcards["dataset"], j.wildcards["task"], j.wildcards["setting"],
              j.wildcards["method"]) for j in by_rule(jobs, "metrics_from_shared")}
    return {c for c in cells if get_method(plan.base_method(c[3])).shares_step0}


def step0_settings(config: dict, cell: tuple) -> tuple:
    """What else a step 0 depends on in the paper grid: the label policy at step 0, the batch
    size (Figure 11's variants, SDR's code), the precision and devices of the code behind the
    row, and its test protocol (the job evaluates its checkpoint)."""
    from ucd.planning.resolve import resolve

    run = resolve(config, dataset=cell[0], task=cell[1], setting=cell[2],
                  method=cell[3], step=0, seed=42)
    return (run.ignore_to_background, run.optim.batch_size, run.train.amp, run.train.devices,
            run.eval.images, run.eval.unseen, run.eval.background)


def step0_training(dataset: str, task: str, setting: str) -> tuple:
    """What a shared step 0 trains on: its classes, and the images they select (those of
    step 0 and, in the disjoint setting, without later classes)."""
    from ucd.data.tasks import get_task

    steps = get_task(dataset, task).steps
    return dataset, setting, tuple(steps[0]), tuple(sorted(c for s in steps[1:] for c in s))
