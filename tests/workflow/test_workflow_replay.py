"""Replay sets in the DAG: built once per (benchmark, step) and shared by every method that
replays there (RECALL and a variant of it), never for step 0 or for methods that do not replay;
a grid that replays without a configured source fails at parse time."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml
from workflow_helpers import SCHEMA, by_rule, default_config, dry_run, merged

from ucd.workflow.checks import check_config, check_schema

TEST_CONFIG = {
    "seeds": [42, 43],
    "grid": [{"benchmarks": ["digits/5-1/disjoint", "digits/5-5/overlapped"],
              "methods": ["recall", "recall-x", "recall-n100", "mib"]}],
    "variants": {  # recall-x replays the same set; recall-n100 asks fewer images per class
        "recall-x": {"method": "recall", "params": {"recall_ce": {"replay_ratio": 0.5}}},
        "recall-n100": {"method": "recall", "params": {"recall_ce": {"images_per_class": 100}}},
    },
}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    path = tmp / "replay.yaml"
    path.write_text(yaml.safe_dump(TEST_CONFIG))
    return dry_run(tmp, "all_runs", "--configfile", str(path))


def test_one_replay_set_per_benchmark_step_and_images_per_class(jobs):
    sets = Counter(j.output[0] for j in by_rule(jobs, "replay_set"))
    assert all(n == 1 for n in sets.values())
    expected = {f"results/replay/digits/5-1/disjoint/step{k}/n{n}"
                for k in range(1, 6) for n in (500, 100)}
    expected |= {f"results/replay/digits/5-5/overlapped/step1/n{n}" for n in (500, 100)}
    assert set(sets) == expected
    job = next(j for j in by_rule(jobs, "replay_set") if j.output[0].endswith("step3/n500"))
    assert "--step 3" in job.shell and "--per-class 500" in job.shell
    assert "--source digits" in job.shell and "results/data/digits" in job.shell


def test_replaying_trainings_read_their_steps_set(jobs):
    users: dict[str, set] = {}
    for j in by_rule(jobs, "train"):
        w = j.wildcards
        replay = [p for p in j.input if p.startswith("results/replay/")]
        if w["method"] == "mib":
            assert replay == []
            continue
        n = 100 if w["method"] == "recall-n100" else 500
        bench = f"{w['dataset']}/{w['task']}/{w['setting']}"
        assert replay == [f"results/replay/{bench}/step{w['step']}/n{n}"], j
        users.setdefault(replay[0], set()).add((w["method"], w["seed"]))
    shared = users["results/replay/digits/5-1/disjoint/step2/n500"]
    assert shared == {(m, s) for m in ("recall", "recall-x") for s in ("42", "43")}
    assert all(int(j.wildcards["step"]) > 0 for j in by_rule(jobs, "train")
               if j.wildcards["method"].startswith("recall"))  # step 0 is ft's, shared


def test_replaying_without_a_source_fails_at_parse_time():
    config = merged(default_config(), TEST_CONFIG)
    config["replay"] = {}
    check_schema(config, SCHEMA)
    with pytest.raises(ValueError, match=r"replay\.digits names no replay source.*folder"):
        check_config(config)
    config["replay"] = {"digits": {"source": "folder"}}
    with pytest.raises(ValueError, match=r"replay\.digits: source folder needs root"):
        check_config(config)
