"""No collisions: over the full paper grid every output path is
written by exactly one job, and the path alone encodes the job's (dataset, task, setting,
method, step) or (dataset, task, setting, shared group) -- issue 10, item 5."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
import yaml

from tests.workflow.workflow_helpers import REPO, Job, default_config, dry_run, merged

STEP_FILES = r"(run\.yaml|model\.pt|metrics\.json|predictions\.npz)"
FIELD = {  # one path component each
    "dataset": r"(?P<dataset>voc|ade|cityscapes|digits)",
    "task": r"(?P<task>[A-Za-z0-9][A-Za-z0-9_.\-]*)",
    "setting": r"(?P<setting>disjoint|overlapped)",
    "method": r"(?P<method>[a-z][a-z0-9_]*(-[A-Za-z0-9_.]+)?)",
    "group": r"(?P<group>[A-Za-z0-9][A-Za-z0-9_.\-]*)",
    "step": r"(?P<step>[0-9]+)",
    "table": r"(?P<table>table[0-9]+)",
    "figure": r"(?P<figure>figure[0-9]+)",
}
# The results path scheme of DESIGN.md / the Snakefile header, written independently here.
SCHEME = [
    "{dataset}/{task}/{setting}/{method}/step{step}/" + STEP_FILES,
    "{dataset}/{task}/{setting}/_shared/{group}/step0/" + STEP_FILES,
    "{dataset}/{task}/{setting}/{method}/final",
    r"splits/{dataset}/{task}/{setting}\.json",
    "data/{dataset}",
    r"figures/(qualitative|curves)/{dataset}/{task}/{setting}\.(pdf|png)",
    r"tables/{table}(_compare)?\.(tex|html|summary\.csv)",
    r"figures/{figure}\.(pdf|png|summary\.csv)",
    r"summary\.csv",
]
PATTERNS = [re.compile("results/" + s.format(**FIELD)) for s in SCHEME]


def parse_output(path: str) -> dict[str, str]:
    """The fields a path encodes; fails unless exactly one pattern of the scheme matches."""
    hits = [m for m in (p.fullmatch(path) for p in PATTERNS) if m]
    assert len(hits) == 1, f"{path}: matches {len(hits)} patterns of the path scheme"
    fields = {k: v for k, v in hits[0].groupdict().items() if v is not None}
    if "/step0/" in path and "step" not in fields:  # shared step 0, or its copy
        fields["step"] = "0"
    return fields


def check_no_collisions(jobs: list[Job]) -> int:
    """Assert each output is produced by one job and parses back to that job's wildcards."""
    producers: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        for out in job.output:
            producers[out].append(job)
    shared = {p: [f"{j.rule} {j.wildcards}" for j in js] for p, js in producers.items()}
    dup = {p: js for p, js in shared.items() if len(js) > 1}
    assert not dup, f"{len(dup)} paths written by several jobs, e.g. {list(dup.items())[:3]}"
    for path, (job,) in producers.items():
        fields = parse_output(path)
        for key, value in job.wildcards.items():
            assert fields.get(key) == value, f"{path} does not encode {key}={value} ({job.rule})"
        if job.rule == "step0_from_shared":  # writes the method's own step 0
            assert fields["step"] == "0" and fields["method"] == job.wildcards["method"]
    return len(producers)


@pytest.fixture(scope="module")
def paper_jobs(tmp_path_factory) -> list[Job]:
    workdir = tmp_path_factory.mktemp("paper")
    return dry_run(workdir, "--configfile", str(REPO / "config" / "paper.yaml"), "--", "all_tables")


@pytest.fixture(scope="module")
def paper_config() -> dict:
    return merged(default_config(), yaml.safe_load((REPO / "config/paper.yaml").read_text()))


def test_paper_grid_has_no_output_collisions(paper_jobs) -> None:
    n = check_no_collisions(paper_jobs)
    runs = {
        tuple(j.wildcards[k] for k in FIELD if k in j.wildcards)
        for j in paper_jobs
        if j.rule == "train"
    }
    assert len(runs) == sum(j.rule == "train" for j in paper_jobs) > 600  # the full grid
    assert n > 3000


def test_shared_step0_groups_hold_identical_trainings(paper_jobs, paper_config) -> None:
    """Methods writing/reading one shared step-0 path must have the same step-0 settings."""
    from ucd.config import config_hash, run_config, step0_group, step0_signature

    members: dict[str, set] = defaultdict(set)
    for job in paper_jobs:
        if job.rule != "step0_from_shared":
            continue
        w = job.wildcards
        (src,) = job.input
        bench = (w["dataset"], w["task"], w["setting"])
        group = parse_output(src)["group"]
        assert step0_group(paper_config, *bench, w["method"]) == group
        run0 = run_config(
            paper_config,
            dataset=bench[0],
            task=bench[1],
            setting=bench[2],
            method=w["method"],
            step=0,
        )
        sig = step0_signature(run0)
        members[src].add(config_hash(sig))
        if group != "base":  # a non-default group is named by its settings
            assert group == f"ft-{config_hash(sig)[:8]}"
    assert members, "the paper grid shares no step 0 (expected many methods to)"
    mixed = {p: h for p, h in members.items() if len(h) > 1}
    assert not mixed, f"shared step-0 paths used by different trainings: {mixed}"


def test_variant_names_cannot_shadow_methods(paper_config) -> None:
    """A variant named like a method would write its runs into that method's directories."""
    from ucd.methods import list_methods

    variants = paper_config.get("variants") or {}
    assert variants, "config.yaml defines the paper's variants"
    method_re = re.compile(FIELD["method"])
    for name, spec in variants.items():
        assert name not in list_methods(), f"variant {name} shadows the method of that name"
        assert method_re.fullmatch(name) and "-" in name, name
        assert name.split("-")[0] == spec["method"], f"{name} is not named <method>-<variant>"


def test_parse_output_refuses_foreign_paths() -> None:
    for bad in ("results/voc/15-1/joint/ft/step0/model.pt", "results/voc/15-1/disjoint/ft/x.pt"):
        with pytest.raises(AssertionError, match="matches 0 patterns"):
            parse_output(bad)
    got = parse_output("results/voc/15-1/overlapped/mib_ucd-tau0.1/step3/model.pt")
    assert got == {
        "dataset": "voc",
        "task": "15-1",
        "setting": "overlapped",
        "method": "mib_ucd-tau0.1",
        "step": "3",
    }
