"""The DAG from dry runs, without data: one training job per (benchmark, method, step), step k
after step k-1 of the same method, step 0 shared, partial targets run only their benchmark."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml
from workflow_helpers import by_rule, dry_run

# The default grid of config.yaml (read, not copied); digits 5-5 has 2 steps.
_GRID = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())["grid"][0]
BENCHES = list(_GRID["benchmarks"])
SHARING = [m for m in _GRID["methods"] if m != "joint"]  # step 0 = plain CE


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    return dry_run(tmp_path_factory.mktemp("dag"), "all_tables")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """One run outside the default grid: MiB+UCD on digits 5-1 (6 steps), overlapped."""
    return dry_run(tmp_path_factory.mktemp("chain"), "results/digits/5-1/overlapped/mib_ucd/final")


def _step(job) -> int:
    return int(job.wildcards["step"])


def _cell(job) -> tuple[str, ...]:
    return tuple(job.wildcards[k] for k in ("dataset", "task", "setting", "method"))


def test_job_counts_per_rule(jobs):
    counts = Counter(j.rule for j in jobs)
    assert counts["train"] == len(BENCHES) * (len(SHARING) * 1 + 1)  # step 1 each + Joint
    assert counts["train_shared"] == len(BENCHES)
    assert counts["evaluate"] == counts["run_config"] == counts["train"]
    assert counts["evaluate_shared"] == counts["run_config_shared"] == len(BENCHES)
    assert counts["step0_from_shared"] == len(SHARING) * len(BENCHES)
    assert counts["split"] == len(BENCHES)
    assert counts["generate_data"] == counts["summary"] == counts["table"] == 1
    assert counts["claims"] == 1
    assert counts["final"] == len(SHARING + ["joint"]) * len(BENCHES)
    assert counts["curves"] == counts["qualitative"] == len(BENCHES)


def test_one_train_job_per_step(jobs):
    keys = [(*_cell(j), _step(j)) for j in by_rule(jobs, "train")]
    assert len(keys) == len(set(keys))
    for bench in BENCHES:
        for m in SHARING:
            assert [k for (*c, k) in keys if c == [*bench.split("/"), m]] == [1], (bench, m)
        assert [k for (*c, k) in keys if c == [*bench.split("/"), "joint"]] == [0]


def test_step_k_reads_step_k_minus_1_of_the_same_method(jobs, chain):
    trains = by_rule(jobs, "train") + by_rule(chain, "train")
    assert sorted(_step(j) for j in by_rule(chain, "train")) == [1, 2, 3, 4, 5]
    for j in trains:
        w, k = j.wildcards, _step(j)
        bench = f"results/{w['dataset']}/{w['task']}/{w['setting']}"
        models = [p for p in j.input if p.endswith("model.pt")]
        if k == 0:
            assert w["method"] == "joint" and models == []
        elif k == 1:
            assert models == [f"{bench}/_shared/base/step0/model.pt"], j
        else:
            assert models == [f"{bench}/{w['method']}/step{k - 1}/model.pt"], j
        if models:
            assert f"--prev {models[0]}" in j.shell
        else:
            assert "--prev" not in j.shell
        assert f"{bench}/{w['method']}/step{k}/run.yaml" in j.input
        assert f"results/splits/{w['dataset']}/{w['task']}/{w['setting']}.json" in j.input


def test_step0_is_shared_once_per_benchmark(jobs):
    shared = by_rule(jobs, "train_shared")
    benches = [f"{j.wildcards['dataset']}/{j.wildcards['task']}/{j.wildcards['setting']}"
               for j in shared]
    assert sorted(benches) == sorted(BENCHES)
    assert {j.wildcards["group"] for j in shared} == {"base"}
    assert all("--prev" not in j.shell for j in shared)
    for j in by_rule(jobs, "step0_from_shared"):
        w = j.wildcards
        assert w["method"] in SHARING
        assert j.input == [f"results/{w['dataset']}/{w['task']}/{w['setting']}"
                           "/_shared/base/step0/metrics.json"]
    # Only Joint trains its own step 0; its metrics come from evaluate.
    own0 = [j for j in by_rule(jobs, "evaluate") if _step(j) == 0]
    assert {j.wildcards["method"] for j in own0} == {"joint"}


def test_tables_need_every_step_metrics(jobs):
    (summary,) = by_rule(jobs, "summary")
    assert "results/digits/5-5/overlapped/mib_ucd/step1/metrics.json" in summary.input
    assert "results/digits/5-5/overlapped/mib_ucd/step0/metrics.json" in summary.input
    assert "results/digits/5-5/overlapped/joint/step0/metrics.json" in summary.input
    assert not any("/joint/step1" in p for p in summary.input)
    (table,) = by_rule(jobs, "table")
    assert sorted(table.input) == sorted(summary.input)  # Table 1 shows every cell of the grid


def test_claims_are_judged_on_the_summary(jobs):
    (claims,) = by_rule(jobs, "claims")
    assert claims.input == ["results/summary.csv"]
    assert sorted(claims.output) == ["results/claims.html", "results/claims.md"]
    # config.yaml reports on the embedded benchmark: the paper's benchmarks mapped onto digits
    for out in ("md", "html"):
        call = f"report claims --embedded --summary results/summary.csv --out results/claims.{out}"
        assert call in claims.shell
    (table,) = by_rule(jobs, "table")
    assert "results/tables/table1.csv" in table.output  # mean, std, n of every cell
    assert "--out results/tables/table1.csv" in table.shell


def test_partial_target_runs_only_its_benchmark(chain):
    assert Counter(j.rule for j in chain) == {
        "generate_data": 1, "split": 1, "run_config_shared": 1, "train_shared": 1,
        "evaluate_shared": 1, "step0_from_shared": 1, "run_config": 5, "train": 5,
        "evaluate": 5, "final": 1,
    }
    for j in chain:
        if "method" in j.wildcards:
            assert j.wildcards["method"] == "mib_ucd"
        if "task" in j.wildcards:
            assert (j.wildcards["task"], j.wildcards["setting"]) == ("5-1", "overlapped")


def test_benchmark_config_replaces_the_grid(tmp_path):
    jobs = dry_run(tmp_path, "all_runs", "--config", "benchmark=digits/5-5/disjoint/ft")
    assert {j.wildcards.get("method") for j in by_rule(jobs, "train")} == {"ft"}
    assert [j.output for j in by_rule(jobs, "final")] == [["results/digits/5-5/disjoint/ft/final"]]
