"""The real DAG executed with a stand-in for `python -m ucd` (fake_ucd.py: checks its inputs,
writes placeholders): jobs run in dependency order, and after a change a rerun redoes only
what depends on it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from workflow_helpers import dry_run, snakemake

FAKE = Path(__file__).with_name("fake_ucd.py")
BENCH = "results/digits/5-5/disjoint"
CONFIG = {
    "ucd_command": f"{sys.executable} {FAKE}",
    "grid": [{"benchmarks": ["digits/5-5/disjoint"], "methods": ["ft", "mib_ucd", "joint"]}],
    "report": {"tables": ["table1"], "qualitative_methods": ["mib_ucd", "joint"]},
}


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    """A working directory where all_tables of a 3-method grid ran (with the fake ucd)."""
    work = tmp_path_factory.mktemp("rerun")
    (work / "tiny.yaml").write_text(yaml.safe_dump(CONFIG))
    proc = snakemake(work, "-c2", "--scheduler", "greedy", "all_tables", "--configfile",
                     str(work / "tiny.yaml"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work


def _redo(work: Path, change: dict) -> set[tuple[str, str, str]]:
    (work / "change.yaml").write_text(yaml.safe_dump(change))
    jobs = dry_run(work, "all_tables", "--configfile", str(work / "tiny.yaml"),
                   str(work / "change.yaml"))
    return {(j.rule, j.wildcards.get("method", j.wildcards.get("group", "")),
             j.wildcards.get("step", "")) for j in jobs}


def test_jobs_ran_in_dependency_order(done):
    calls = (done / "calls.log").read_text().splitlines()
    trains = [c for c in calls if c.startswith("train ")]
    assert len(trains) == 4  # shared step 0, ft step 1, mib_ucd step 1, joint step 0
    first = calls.index(f"train --run {BENCH}/_shared/base/step0/run.yaml "
                        f"--out {BENCH}/_shared/base/step0/model.pt")
    for method in ("ft", "mib_ucd"):
        call = (f"train --run {BENCH}/{method}/step1/run.yaml --out {BENCH}/{method}/step1/"
                f"model.pt --prev {BENCH}/_shared/base/step0/model.pt")
        assert calls.index(call) > first
    assert calls[0].startswith("data generate digits")
    assert calls[-1].startswith("report")
    # the shared step-0 metrics, relabelled for each method reusing them
    copy = yaml.safe_load((done / BENCH / "mib_ucd/step0/metrics.json").read_text())
    assert copy["method"] == "mib_ucd" and copy["shared_step0"] == f"{BENCH}/_shared/base/step0"
    final = yaml.safe_load((done / BENCH / "mib_ucd/final").read_text())
    assert final["metrics"] == f"{BENCH}/mib_ucd/step1/metrics.json"
    run = yaml.safe_load((done / BENCH / "_shared/base/step0/run.yaml").read_text())
    default = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())
    lr0 = default["datasets"]["digits"]["optim"]["lr"]
    assert (run["method"], run["step"], run["optim"]["lr"]) == ("ft", 0, lr0)


def test_nothing_to_redo_without_a_change(done):
    assert dry_run(done, "all_tables", "--configfile", str(done / "tiny.yaml")) == []


def test_a_method_parameter_redoes_only_that_methods_incremental_step(done):
    redo = _redo(done, {"method_params": {"mib_ucd": {"ucd": {"temperature": 0.1}}}})
    runs = {r for r in redo if r[0] in ("run_config", "train", "evaluate", "final")}
    assert runs == {("run_config", "mib_ucd", "1"), ("train", "mib_ucd", "1"),
                    ("evaluate", "mib_ucd", "1"), ("final", "mib_ucd", "")}


def test_a_step0_setting_redoes_the_shared_step0_and_everything_after(done):
    redo = _redo(done, {"datasets": {"digits": {"optim": {"lr": 0.02}}}})
    trained = {(m, k) for r, m, k in redo if r.startswith("train")}
    assert trained == {("base", ""), ("ft", "1"), ("mib_ucd", "1"), ("joint", "0")}
    assert ("step0_from_shared", "ft", "") in redo
    # the data and splits do not depend on the learning rate, nor step 1's run config
    assert not {r for r, _, _ in redo} & {"generate_data", "split"}
    assert ("run_config", "ft", "1") not in redo


def test_snakemake_report_shows_the_claims(done):
    proc = snakemake(done, "--report", "report.html", "--configfile", str(done / "tiny.yaml"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = (done / "report.html").read_text()
    assert "Claims of the paper" in page and "claims.html" in page
