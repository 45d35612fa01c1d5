"""End to end: `snakemake -c2 all_tables` on a tiny grid of the embedded benchmark, with the
real package (data generation, splits, training, evaluation, tables and figures)."""

from __future__ import annotations

import csv

import pytest
import yaml
from workflow_helpers import dry_run, snakemake

pytestmark = pytest.mark.slow

BENCH = "results/digits/5-5/disjoint"
TINY = {
    "datasets": {"digits": {"optim": {"epochs": 1}}},
    "grid": [{"benchmarks": ["digits/5-5/disjoint"], "methods": ["ft", "mib_ucd", "joint"]}],
    "report": {"tables": ["table1"], "qualitative_methods": ["ft", "mib_ucd", "joint"]},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    proc = snakemake(work, "-c2", "--scheduler", "greedy", "all_tables", "--configfile",
                     str(work / "tiny.yaml"), timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return work


def test_every_step_is_trained_and_evaluated(run):
    for step_dir in ("_shared/base/step0", "ft/step1", "mib_ucd/step1", "joint/step0"):
        for name in ("model.pt", "metrics.json", "run.yaml", "train.log", "eval.log"):
            assert (run / BENCH / step_dir / name).is_file(), (step_dir, name)
    assert "epoch" in (run / BENCH / "mib_ucd/step1/train.log").read_text()
    for method, last in (("ft", 1), ("mib_ucd", 1), ("joint", 0)):
        final = yaml.safe_load((run / BENCH / method / "final").read_text())
        assert final["metrics"] == f"{BENCH}/{method}/step{last}/metrics.json"
        assert 0.0 <= final["miou_all"] <= 1.0


def test_step0_metrics_come_from_the_shared_training(run):
    shared = yaml.safe_load((run / BENCH / "_shared/base/step0/metrics.json").read_text())
    for method in ("ft", "mib_ucd"):
        mine = yaml.safe_load((run / BENCH / method / "step0/metrics.json").read_text())
        assert mine["method"] == method and mine["iou"] == shared["iou"]
    assert not (run / BENCH / "mib_ucd/step0/model.pt").exists()


def test_summary_tables_and_figures(run):
    with open(run / "results/summary.csv") as f:
        rows = {(r["method"], r["step"]) for r in csv.DictReader(f)}
    assert rows == {("ft", "0"), ("ft", "1"), ("mib_ucd", "0"), ("mib_ucd", "1"), ("joint", "0")}
    tex = (run / "results/tables/table1.tex").read_text()
    assert "\\begin{tabular}" in tex and "MiB+UCD" in tex
    for fig in ("curves", "qualitative"):
        assert (run / f"results/figures/{fig}/digits/5-5/disjoint.png").stat().st_size > 0


def test_rerun_has_nothing_to_do(run):
    assert dry_run(run, "all_tables", "--configfile", str(run / "tiny.yaml")) == []
