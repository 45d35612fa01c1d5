"""The real DAG executed with a stand-in for `python -m ucd` (fake_ucd.py: checks its inputs,
writes placeholders): jobs run in dependency order, per seed, and after a change a rerun redoes
only what depends on it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from workflow_helpers import dry_run, snakemake

FAKE = Path(__file__).with_name("fake_ucd.py")
BENCH = "results/digits/5-5/disjoint"
SEEDS = (42, 43)
CONFIG = {
    "ucd_command": f"{sys.executable} {FAKE}",
    "seeds": list(SEEDS),
    "grid": [{"benchmarks": ["digits/5-5/disjoint"], "methods": ["ft", "mib_ucd", "joint"]}],
    "report": {"tables": ["table1"], "qualitative_methods": ["mib_ucd", "joint"]},
}
SHARED_TRAIN = re.compile(r"train --run-json \S+ --out results/digits/_shared/(?P<group>"
                          r"(?P<kind>step0|joint)-[0-9a-f]+)/seed(?P<seed>[0-9]+)/step0/model\.pt ")


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    """A working directory where all_tables of a 3-method grid ran (with the fake ucd)."""
    work = tmp_path_factory.mktemp("rerun")
    (work / "tiny.yaml").write_text(yaml.safe_dump(CONFIG))
    proc = snakemake(work, "-c2", "--scheduler", "greedy", "all_tables", "--configfile",
                     str(work / "tiny.yaml"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work


def shared_calls(calls: list[str]) -> dict[tuple[str, int], tuple[str, int]]:
    """(kind, seed) -> (group, index in calls) of every shared training that ran."""
    out = {}
    for i, call in enumerate(calls):
        m = SHARED_TRAIN.match(call)
        if m:
            assert (m["kind"], int(m["seed"])) not in out, f"trained twice: {call}"
            out[(m["kind"], int(m["seed"]))] = (m["group"], i)
    return out


def _redo(work: Path, change: dict) -> set[tuple[str, str, str, str]]:
    (work / "change.yaml").write_text(yaml.safe_dump(change))
    jobs = dry_run(work, "all_tables", "--configfile", str(work / "tiny.yaml"),
                   str(work / "change.yaml"))
    return {(j.rule, j.wildcards.get("method", j.wildcards.get("group", "")),
             j.wildcards.get("step", ""), j.wildcards.get("seed", "")) for j in jobs}


def test_jobs_ran_in_dependency_order(done):
    calls = (done / "calls.log").read_text().splitlines()
    trains = [c for c in calls if c.startswith("train ")]
    assert len(trains) == 4 * len(SEEDS)  # shared step 0, ft step 1, mib_ucd step 1, Joint
    shared = shared_calls(calls)
    assert set(shared) == {(kind, s) for kind in ("step0", "joint") for s in SEEDS}
    assert len({shared[("step0", s)][0] for s in SEEDS}) == 1  # one training, once per seed
    for seed in SEEDS:
        group, first = shared[("step0", seed)]
        base = f"results/digits/_shared/{group}/seed{seed}/step0"
        for method in ("ft", "mib_ucd"):
            run = f"{BENCH}/{method}/seed{seed}/step1"
            call = f" --out {run}/model.pt --prev {base}/model.pt "
            (i,) = [i for i, c in enumerate(calls) if c.startswith("train ") and call in c]
            assert i > first
    assert calls[0].startswith("data generate digits")
    assert calls[-1].startswith("report")


def test_shared_trainings_run_configs(done):
    default = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())
    lr0 = default["datasets"]["digits"]["optim"]["lr"]
    for (kind, seed), (group, _) in shared_calls((done / "calls.log").read_text().splitlines(
    )).items():
        run = yaml.safe_load((done / f"results/digits/_shared/{group}/seed{seed}/step0/run.yaml")
                             .read_text())
        method = "ft" if kind == "step0" else "joint"
        assert (run["method"], run["step"], run["seed"], run["optim"]["lr"]) == (
            method, 0, seed, lr0)


def test_cells_get_their_own_metrics_from_the_shared_trainings(done):
    calls = (done / "calls.log").read_text().splitlines()
    shared = shared_calls(calls)
    for seed in SEEDS:
        for method, kind, new in (("mib_ucd", "step0", []), ("joint", "joint", list(range(6, 11)))):
            mine = yaml.safe_load((done / BENCH / method / f"seed{seed}/step0/metrics.json")
                                  .read_text())
            group = shared[(kind, seed)][0]
            assert mine["shared_training"] == f"results/digits/_shared/{group}/seed{seed}/step0"
            assert (mine["method"], mine["seed"], mine["step"]) == (method, seed, 0)
            # the cell's columns: Joint is compared with the task's last step
            assert mine["base_classes"] == [1, 2, 3, 4, 5] and mine["new_classes"] == new


def test_nothing_to_redo_without_a_change(done):
    assert dry_run(done, "all_tables", "--configfile", str(done / "tiny.yaml")) == []


def test_a_method_parameter_redoes_only_that_methods_incremental_step(done):
    redo = _redo(done, {"method_params": {"mib_ucd": {"ucd": {"temperature": 0.1}}}})
    runs = {r for r in redo if r[0] == "train"}
    assert runs == {("train", "mib_ucd", "1", str(seed)) for seed in SEEDS}
    # the shared step 0 is not retrained (its cells' metrics are rewritten: cheap, local)
    assert not {r for r in redo if r[0] == "train_shared"}


def test_a_step0_setting_redoes_the_shared_trainings_and_everything_after(done):
    before = {g for g, _ in shared_calls((done / "calls.log").read_text().splitlines()).values()}
    default = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())
    lr = 2 * default["datasets"]["digits"]["optim"]["lr"]  # a step-0 rate other than config's
    redo = _redo(done, {"datasets": {"digits": {"optim": {"lr": lr}}}})
    trained = {(m, k, s) for r, m, k, s in redo if r == "train"}
    assert trained == {(m, "1", str(s)) for m in ("ft", "mib_ucd") for s in SEEDS}
    shared = {(g.split("-")[0], s) for r, g, _, s in redo if r == "train_shared"}
    assert shared == {(kind, str(s)) for kind in ("step0", "joint") for s in SEEDS}
    assert not {g for r, g, _, _ in redo if r == "train_shared"} & before  # new group names
    assert {m for r, m, _, _ in redo if r == "metrics_from_shared"} == {"ft", "mib_ucd", "joint"}
    # the data and splits do not depend on the learning rate, nor step 1's run config
    assert not {r for r, _, _, _ in redo} & {"generate_data", "split"}


def test_snakemake_report_shows_the_claims(done):
    proc = snakemake(done, "--report", "report.html", "--configfile", str(done / "tiny.yaml"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = (done / "report.html").read_text()
    assert "Claims of the paper" in page and "claims.html" in page


def test_local_training_jobs_are_pointed_at_the_fork_server(done):
    """onstart names RESULTS/.ucd-zygote to every job of a local run (`python -m ucd train`
    then goes through the fork server; the stand-in only records it)."""
    lines = (done / "fork_server.log").read_text().splitlines()
    assert len(lines) == 4 * len(SEEDS)
    assert {Path(p).resolve() for p in lines} == {(done / "results" / ".ucd-zygote").resolve()}


def test_no_fork_server_when_the_config_says_so(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**CONFIG, "fork_server": False}))
    target = f"{BENCH}/ft/seed42/step0/metrics.json"  # from one shared training
    proc = snakemake(tmp_path, "-c1", target, "--configfile", str(tmp_path / "tiny.yaml"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "fork_server.log").read_text() == "\n"
