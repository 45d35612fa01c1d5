"""End to end: `snakemake -c2 all_tables` on a tiny grid of the embedded benchmark, with the
real package (data generation, splits, training, evaluation, tables and figures)."""

from __future__ import annotations

import csv

import pytest
import yaml
from workflow_helpers import dry_run, snakemake

pytestmark = pytest.mark.slow

BENCH = "results/digits/5-5/disjoint"
SEED = 7  # not the default, so a seed that does not reach a file shows
TINY = {
    "seeds": [SEED],
    "datasets": {"digits": {"optim": {"epochs": 1}, "incremental": {"optim": {"epochs": 1}}}},
    "grid": [{"benchmarks": ["digits/5-5/disjoint"], "methods": ["ft", "mib_ucd", "joint"]}],
    "report": {"tables": ["table1"], "qualitative_methods": ["ft", "mib_ucd", "joint"]},
}
TRAIN_FILES = ("model.pt", "metrics.json", "predictions.npz", "run.yaml", "train.log")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    proc = snakemake(work, "-c2", "--scheduler", "greedy", "all_tables", "--configfile",
                     str(work / "tiny.yaml"), timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return work


def test_the_fork_server_ran_and_stopped_with_the_run(run):
    """The first training job started it (the run is local); onsuccess stopped it."""
    log = (run / "results/.ucd-zygote/server.log").read_text()
    assert " ready: " in log and log.rstrip().endswith("stopped")
    assert not (run / "results/.ucd-zygote/pid").exists()
    assert not (run / "results/.ucd-zygote/owner").exists()


def shared_dirs(work, kind: str) -> list:
    return sorted((work / "results/digits/_shared").glob(f"{kind}-*/seed{SEED}/step0"))


def test_every_step_is_trained_and_evaluated(run):
    (step0,), (joint,) = shared_dirs(run, "step0"), shared_dirs(run, "joint")
    for step_dir in (step0, joint, run / BENCH / f"ft/seed{SEED}/step1",
                     run / BENCH / f"mib_ucd/seed{SEED}/step1"):
        for name in TRAIN_FILES:
            assert (step_dir / name).is_file(), (step_dir, name)
        config = yaml.safe_load((step_dir / "run.yaml").read_text())
        assert config["seed"] == SEED and config["optim"]["epochs"] == 1
    assert "epoch" in (run / BENCH / f"mib_ucd/seed{SEED}/step1/train.log").read_text()
    for method in ("ft", "mib_ucd"):  # all_tables writes no final flags (all_runs does)
        metrics = yaml.safe_load((run / BENCH / method / f"seed{SEED}/step1/metrics.json")
                                 .read_text())
        assert 0.0 <= metrics["miou_all"] <= 1.0 and (metrics["method"], metrics["step"]) == (
            method, 1)


def test_step0_metrics_come_from_the_shared_training(run):
    (step0,) = shared_dirs(run, "step0")
    shared = yaml.safe_load((step0 / "metrics.json").read_text())
    for method in ("ft", "mib_ucd"):
        mine = yaml.safe_load((run / BENCH / method / f"seed{SEED}/step0/metrics.json")
                              .read_text())
        assert (mine["method"], mine["seed"]) == (method, SEED)
        assert mine["iou"] == shared["iou"] and mine["miou_old"] == shared["miou_old"]
        assert not (run / BENCH / method / f"seed{SEED}/step0/model.pt").exists()


def test_summary_tables_and_figures(run):
    with open(run / "results/summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["method"], r["step"]) for r in rows} == {
        ("ft", "0"), ("ft", "1"), ("mib_ucd", "0"), ("mib_ucd", "1"), ("joint", "0")}
    assert {r.get("seed") for r in rows} == {str(SEED)}
    tex = (run / "results/tables/table1.tex").read_text()
    assert "\\begin{tabular}" in tex and "MiB+UCD" in tex
    body = tex.split("\\bottomrule")[0].split("\nMethod &")[1].splitlines()[1:]
    rows = [ln.split(" &")[0] for ln in body if ln.endswith("\\\\")]
    assert rows == ["FT", "MiB+UCD", "Joint"]  # only the rows that ran
    fidelity = (run / "results/fidelity.md").read_text()
    assert "## digits/5-5/disjoint: the paper's voc/15-5/disjoint (Table 1)" in fidelity
    assert "| MiB+UCD | held-out |" in fidelity and "| FT | calibration |" in fidelity
    for fig in ("curves", "qualitative"):
        assert (run / f"results/figures/{fig}/digits/5-5/disjoint.png").stat().st_size > 0


def test_rerun_has_nothing_to_do(run):
    assert dry_run(run, "all_tables", "--configfile", str(run / "tiny.yaml")) == []
