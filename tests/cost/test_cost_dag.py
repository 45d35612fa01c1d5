"""The dry-run parser and the DAG walks of ``ucd cost``: jobs with their files, wildcards and
GPUs; ancestors; the critical path on hand-built chains."""

from __future__ import annotations

import pytest

from ucd.cost.dag import Dag, Job, parse_dry_run

DRY_RUN = """\
Building DAG of jobs...
[Thu Dec  3 10:36:38 2026]
rule train:
    input: results/d/5-5/disjoint/mib/seed42/step1/run.yaml, results/d/_shared/g/model.pt
    output: results/d/5-5/disjoint/mib/seed42/step1/model.pt
    log: results/d/5-5/disjoint/mib/seed42/step1/train.log
    jobid: 7
    reason: Forced execution
    wildcards: dataset=d, task=5-5, setting=disjoint, method=mib, seed=42, step=1
    resources: tmpdir=/tmp, gpu=2, mem_mb=4000
Shell command: python -m ucd train --run x

[Thu Dec  3 10:36:38 2026]
localrule run_config:
    output: results/d/5-5/disjoint/mib/seed42/step1/run.yaml
    jobid: 8
    reason: Forced execution
    wildcards: dataset=d, task=5-5, setting=disjoint, method=mib, seed=42, step=1
    resources: tmpdir=/tmp
Shell command: None
Job stats:
job      count
"""


def test_parse_dry_run_reads_every_field():
    train, config = parse_dry_run(DRY_RUN)
    assert (train.rule, train.jobid, config.rule, config.jobid) == ("train", 7, "run_config", 8)
    assert train.input == ["results/d/5-5/disjoint/mib/seed42/step1/run.yaml",
                           "results/d/_shared/g/model.pt"]
    assert train.output == ["results/d/5-5/disjoint/mib/seed42/step1/model.pt"]
    assert train.wildcards["method"] == "mib" and train.wildcards["step"] == "1"
    assert (train.gpus, config.gpus) == (2, 0)
    assert train.name() == "train d/5-5/disjoint/mib/seed42/step1"
    assert Dag([train, config]).parents == [[1], []]  # run.yaml comes from run_config


def _chain(edges: dict[str, list[str]]) -> list[Job]:
    """Jobs named by their one output; ``edges[name]`` = the jobs it reads from."""
    return [Job("x", input=list(deps), output=[name]) for name, deps in edges.items()]


def test_critical_path_takes_the_longest_chain_not_the_longest_job():
    #   a(1) -> b(5) -> d(1)      a -> c(2) -> d      e(6) alone
    jobs = _chain({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []})
    seconds, path = Dag(jobs).critical_path([1, 5, 2, 1, 6])
    assert seconds == 7 and [jobs[i].output[0] for i in path] == ["a", "b", "d"]
    seconds, path = Dag(jobs).critical_path([1, 5, 2, 1, 8])
    assert seconds == 8 and [jobs[i].output[0] for i in path] == ["e"]


def test_critical_path_follows_dependencies_in_any_listing_order():
    jobs = _chain({"d": ["c"], "c": ["b"], "b": ["a"], "a": []})  # listed last-first
    seconds, path = Dag(jobs).critical_path([1, 1, 1, 1])
    assert seconds == 4 and [jobs[i].output[0] for i in path] == ["a", "b", "c", "d"]


def test_ancestors_are_everything_a_job_needs():
    jobs = _chain({"a": [], "b": ["a"], "c": [], "t": ["b"]})
    assert {jobs[i].output[0] for i in Dag(jobs).ancestors([3])} == {"a", "b", "t"}


def test_a_cycle_is_refused():
    jobs = _chain({"a": ["b"], "b": ["a"]})
    with pytest.raises(ValueError, match="cycle"):
        Dag(jobs).critical_path([1, 1])
