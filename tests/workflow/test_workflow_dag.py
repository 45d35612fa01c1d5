"""The DAG from dry runs, without data: one training job per (benchmark, method, seed, step),
step k after step k-1 of the same method and seed, one shared step 0 per (dataset, setting,
step-0 classes, later classes, seed), one Joint per (dataset, seed), partial targets run only
their cell."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from workflow_helpers import by_rule, dry_run

# The default grid of config.yaml (read, not copied); digits 5-5 has 2 steps.
_CONFIG = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())
BENCHES = list(_CONFIG["grid"][0]["benchmarks"])
SHARING = [m for m in _CONFIG["grid"][0]["methods"] if m != "joint"]  # step 0 = plain CE
SEEDS = [str(s) for s in _CONFIG["seeds"]]
SHARED = re.compile(r"results/(?P<dataset>\w+)/_shared/(?P<group>(step0|joint)-[0-9a-f]{10})"
                    r"/seed(?P<seed>[0-9]+)/step0/(?P<file>[\w.]+)")


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    return dry_run(tmp_path_factory.mktemp("dag"), "all_tables")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """One run outside the default grid: MiB+UCD on digits 5-1 (6 steps), overlapped, whose
    step 0 is the one of 5-5 overlapped (same step-0 classes, same later classes)."""
    return dry_run(tmp_path_factory.mktemp("chain"),
                   "results/digits/5-1/overlapped/mib_ucd/seed42/final")


def _step(job) -> int:
    return int(job.wildcards["step"])


def _cell(job) -> tuple[str, ...]:
    return tuple(job.wildcards[k] for k in ("dataset", "task", "setting", "method"))


def _shared(path: str) -> dict[str, str]:
    m = SHARED.fullmatch(path)
    assert m, f"{path} is not a shared training's file"
    return m.groupdict()


def test_job_counts_per_rule(jobs):
    counts = Counter(j.rule for j in jobs)
    per_seed = len(SEEDS)
    assert counts["train"] == len(BENCHES) * len(SHARING) * per_seed  # step 1 each
    assert counts["train_shared"] == (len(BENCHES) + 1) * per_seed  # a step 0 per setting, Joint
    # each training writes its run.yaml and evaluates its checkpoint: no separate jobs
    assert not counts["run_config"] and not counts["evaluate"] and not counts["evaluate_shared"]
    assert counts["metrics_from_shared"] == len(SHARING + ["joint"]) * len(BENCHES) * per_seed
    assert counts["split"] == len(BENCHES)
    assert counts["generate_data"] == counts["summary"] == counts["table"] == 1
    assert counts["claims"] == counts["fidelity"] == 1
    assert not counts["final"]  # the flags of single runs (all_runs), not needed for the tables
    assert counts["curves"] == counts["qualitative"] == len(BENCHES)


def test_one_train_job_per_step_and_seed(jobs):
    keys = [(*_cell(j), j.wildcards["seed"], _step(j)) for j in by_rule(jobs, "train")]
    assert len(keys) == len(set(keys))
    for bench in BENCHES:
        for m in SHARING:
            for seed in SEEDS:
                steps = [k for (*c, s, k) in keys if c == [*bench.split("/"), m] and s == seed]
                assert steps == [1], (bench, m, seed)
    assert not [k for k in keys if k[3] == "joint"]  # Joint is a shared training


def test_step_k_reads_step_k_minus_1_of_the_same_method_and_seed(jobs, chain):
    trains = by_rule(jobs, "train") + by_rule(chain, "train")
    assert sorted(_step(j) for j in by_rule(chain, "train")) == [1, 2, 3, 4, 5]
    for j in trains:
        w, k = j.wildcards, _step(j)
        run = f"results/{w['dataset']}/{w['task']}/{w['setting']}/{w['method']}/seed{w['seed']}"
        models = [p for p in j.input if p.endswith("model.pt")]
        assert len(models) == 1 and k >= 1, j
        if k == 1:  # the shared step 0 of this run's dataset and seed
            shared = _shared(models[0])
            assert (shared["dataset"], shared["seed"]) == (w["dataset"], w["seed"]), j
            assert shared["group"].startswith("step0-")
        else:
            assert models == [f"{run}/step{k - 1}/model.pt"], j
        assert f"--prev {models[0]}" in j.shell
        assert f"{run}/step{k}/run.yaml" in j.output  # the job keeps its resolved config
        assert "--run-json " in j.shell
        assert f"results/splits/{w['dataset']}/{w['task']}/{w['setting']}.json" in j.input


def test_shared_step0_is_one_per_setting_and_seed(jobs):
    shared = by_rule(jobs, "train_shared")
    keys = Counter((j.wildcards["group"], j.wildcards["seed"]) for j in shared)
    assert set(keys.values()) == {1}
    step0 = {g for g, _ in keys if g.startswith("step0-")}
    joint = {g for g, _ in keys if g.startswith("joint-")}
    assert len(step0) == len(BENCHES) and len(joint) == 1  # one digits dataset
    assert set(keys) == {(g, s) for g in step0 | joint for s in SEEDS}
    assert all("--prev" not in j.shell for j in shared)
    by_bench: dict[tuple, set] = {}
    for j in by_rule(jobs, "metrics_from_shared"):
        w = j.wildcards
        (src,) = j.input
        got = _shared(src)
        assert (got["dataset"], got["seed"], got["file"]) == (w["dataset"], w["seed"],
                                                              "metrics.json")
        assert w["step"] == "0" and w["method"] in SHARING + ["joint"]
        assert got["group"].startswith("joint-" if w["method"] == "joint" else "step0-")
        if w["method"] != "joint":
            by_bench.setdefault((w["setting"], w["seed"]), set()).add(got["group"])
    assert all(len(g) == 1 for g in by_bench.values())  # every method of a setting: one step 0
    assert not [j for j in by_rule(jobs, "train") if _step(j) == 0]  # none trains its own


def test_shared_step0_is_shared_across_tasks(jobs, chain):
    """5-1 learns the classes of 5-5 at step 0 and the same ones later: one training."""
    (train0,) = by_rule(chain, "train_shared")
    (split0,) = [p for p in train0.input if p.startswith("results/splits/")]
    assert split0 == "results/splits/digits/5-5/overlapped.json"
    overlapped = {j.wildcards["group"] for j in by_rule(jobs, "train_shared")
                  if j.wildcards["seed"] == "42"
                  and "results/splits/digits/5-5/overlapped.json" in j.input}
    assert overlapped == {train0.wildcards["group"]}


def test_tables_need_every_step_metrics(jobs):
    (summary,) = by_rule(jobs, "summary")
    for seed in SEEDS:
        for path in ("mib_ucd/seed{s}/step1", "mib_ucd/seed{s}/step0", "joint/seed{s}/step0"):
            assert f"results/digits/5-5/overlapped/{path.format(s=seed)}/metrics.json" in (
                summary.input)
    assert not any("/joint/seed" in p and "/step1/" in p for p in summary.input)
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
    (fidelity,) = by_rule(jobs, "fidelity")
    assert fidelity.input == ["results/summary.csv"]
    assert "report fidelity --summary results/summary.csv --out results/fidelity.md " \
           "results/fidelity.html" in fidelity.shell
    (table,) = by_rule(jobs, "table")
    assert "results/tables/table1.csv" in table.output  # mean, std, n of every cell
    formats = " ".join(f"results/tables/table1.{x}" for x in ("tex", "html", "csv"))
    assert f"--out {formats}" in table.shell  # every format from one process


def test_partial_target_runs_only_its_cell(chain):
    assert Counter(j.rule for j in chain) == {
        "generate_data": 1, "decode_data": 1, "split": 2, "train_shared": 1,
        "metrics_from_shared": 1,
        "train": 5, "final": 1,
    }
    for j in chain:
        if "method" in j.wildcards:
            assert j.wildcards["method"] == "mib_ucd"
        if "task" in j.wildcards and j.rule != "split":
            assert (j.wildcards["task"], j.wildcards["setting"]) == ("5-1", "overlapped")
        if "seed" in j.wildcards:
            assert j.wildcards["seed"] == "42"


def test_benchmark_config_replaces_the_grid(tmp_path):
    jobs = dry_run(tmp_path, "all_runs", "--config", "benchmark=digits/5-5/disjoint/ft")
    assert {j.wildcards.get("method") for j in by_rule(jobs, "train")} == {"ft"}
    assert sorted(j.output for j in by_rule(jobs, "final")) == [
        [f"results/digits/5-5/disjoint/ft/seed{s}/final"] for s in sorted(SEEDS)]


def test_seeds_multiply_the_jobs(tmp_path):
    jobs = dry_run(tmp_path, "all_runs", "--config", "benchmark=digits/5-5/disjoint/mib",
                   "seeds=[3,4,5]")
    counts = Counter(j.rule for j in jobs)
    assert counts["train"] == counts["train_shared"] == counts["final"] == 3
    assert counts["split"] == 1  # the images per step do not depend on the seed
    for j in by_rule(jobs, "train"):
        (prev,) = [p for p in j.input if p.endswith("model.pt")]
        assert _shared(prev)["seed"] == j.wildcards["seed"]


def test_the_generated_images_are_decoded_once_for_every_training(jobs):
    (decode,) = by_rule(jobs, "decode_data")
    assert decode.input == ["results/data/digits"]
    assert decode.output == ["results/decoded/digits"]
    trainings = by_rule(jobs, "train") + by_rule(jobs, "train_shared")
    for j in trainings:
        assert "results/decoded/digits" in j.input
        assert "--decoded results/decoded/digits " in j.shell
