"""No collisions: over the full paper grid every output path is written by exactly one job,
and the path alone encodes the job's (dataset, task, setting, method, seed, step) or (dataset,
shared group, seed) -- issue 10, item 5. A shared training's members would train exactly what it
trains -- one shared step 0 per (dataset, setting, step-0 classes, later classes, seed), one
Joint per (dataset, seed)."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest

from tests.workflow.workflow_helpers import REPO, Job, dry_run
from tests.workflow.workflow_helpers import paper_config as load_paper_config

STEP_FILES = r"(run\.yaml|model\.pt|metrics\.json|predictions\.npz)"
FIELD = {  # one path component each
    "dataset": r"(?P<dataset>voc|ade|cityscapes|digits)",
    "task": r"(?P<task>[A-Za-z0-9][A-Za-z0-9_.\-]*)",
    "setting": r"(?P<setting>disjoint|overlapped)",
    "method": r"(?P<method>[a-z][a-z0-9_]*(-[A-Za-z0-9_.]+)?)",
    "group": r"(?P<group>(step0|joint)-[0-9a-f]+)",
    "seed": r"(?P<seed>[0-9]+)",
    "step": r"(?P<step>[0-9]+)",
    "per_class": r"(?P<per_class>[1-9][0-9]*)",
    "table": r"(?P<table>table[0-9]+)",
    "figure": r"(?P<figure>figure[0-9]+)",
}
# The results path scheme of DESIGN.md / the Snakefile header, written independently here.
SCHEME = [
    "{dataset}/{task}/{setting}/{method}/seed{seed}/step{step}/" + STEP_FILES,
    "{dataset}/_shared/{group}/seed{seed}/step0/" + STEP_FILES,
    "{dataset}/{task}/{setting}/{method}/seed{seed}/final",
    r"splits/{dataset}/{task}/{setting}\.json",
    "data/{dataset}",
    "decoded/{dataset}",
    "replay/{dataset}/{task}/{setting}/step{step}/n{per_class}",
    r"figures/(qualitative|curves)/{dataset}/{task}/{setting}\.(pdf|png)",
    r"tables/{table}(_compare)?\.(tex|html|csv|summary\.csv)",
    r"figures/{figure}\.(pdf|png|summary\.csv)",
    r"summary\.csv",
    r"claims\.(md|html)",
    r"fidelity\.(md|html)",
]
PATTERNS = [re.compile("results/" + s.format(**FIELD)) for s in SCHEME]


def parse_output(path: str) -> dict[str, str]:
    """The fields a path encodes; fails unless exactly one pattern of the scheme matches."""
    hits = [m for m in (p.fullmatch(path) for p in PATTERNS) if m]
    assert len(hits) == 1, f"{path}: matches {len(hits)} patterns of the path scheme"
    fields = {k: v for k, v in hits[0].groupdict().items() if v is not None}
    if "/_shared/" in path:  # a shared training is a step 0
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
        if job.rule == "metrics_from_shared":  # writes the cell's own step 0, same seed
            (src,) = job.input
            assert fields["step"] == "0" and parse_output(src)["seed"] == fields["seed"]
    return len(producers)


@pytest.fixture(scope="module")
def paper_jobs(tmp_path_factory) -> list[Job]:
    workdir = tmp_path_factory.mktemp("paper")
    return dry_run(workdir, "--configfile", str(REPO / "config" / "paper.yaml"), "--", "all_tables")


@pytest.fixture(scope="module")
def paper_config() -> dict:
    return load_paper_config()


def test_paper_grid_has_no_output_collisions(paper_jobs) -> None:
    n = check_no_collisions(paper_jobs)
    runs = {
        tuple(j.wildcards[k] for k in FIELD if k in j.wildcards)
        for j in paper_jobs
        if j.rule == "train"
    }
    assert len(runs) == sum(j.rule == "train" for j in paper_jobs) > 600  # the full grid
    assert n > 3000


def test_seeds_do_not_collide(tmp_path) -> None:
    """The default grid runs two seeds (the paper grid one): each writes its own files."""
    jobs = dry_run(tmp_path, "all_tables", "--config", "seeds=[42,43]")
    check_no_collisions(jobs)
    seeds = {j.wildcards["seed"] for j in jobs if j.rule in ("train", "train_shared")}
    assert seeds == {"42", "43"}


def trained_at_step0(run, method_params: dict | None = None) -> str:
    """What step 0 of a run config trains, written here independently of ucd.planning.plan: data
    (Joint: every class of the dataset; otherwise the setting, step-0 classes and later classes,
    which select the images), loss terms as built for step 0, label policy at step 0, model,
    optimiser, training and evaluation settings that change results, dataset and seed."""
    from ucd.data.tasks import get_task
    from ucd.methods import get_method

    method = get_method(run.base_method)
    steps = get_task(run.dataset, run.task).steps
    if method.joint:
        data = ["joint", sorted(c for s in steps for c in s)]
    else:
        data = [run.setting, list(steps[0]), sorted(c for s in steps[1:] for c in s)]
    if method.shares_step0:  # its step 0 is its owner's, with the owner's configured params
        owner = get_method(method.step0)
        configured = (method_params or {}).get(owner.name) or {}
        params = {t: {**p, **(configured.get(t) or {})} for t, p in owner.default_params().items()}
        built = owner.build_terms(params, 0)
    else:
        built = method.build_terms(run.params, 0)
    terms = [[t.name, t.params] for t in built]
    d = run.to_dict()
    train = {k: v for k, v in d["train"].items()
             if k not in ("checkpoint_every_s", "log_every_s", "threads")}
    return json.dumps([run.dataset, run.seed, data, terms, run.ignore_to_background,
                       d["model"], d["optim"], train, d["data"]["crop_size"], d["eval"]["unseen"]],
                      sort_keys=True)


def test_shared_trainings_hold_identical_trainings(paper_jobs, paper_config) -> None:
    """Every cell reading a shared training would train exactly what that training trains, and
    no two shared trainings train the same thing."""
    from ucd.planning.plan import Cell, Plan

    plan = Plan(paper_config)
    shared = plan.shared_trainings()
    trained = {(j.wildcards["dataset"], j.wildcards["group"], int(j.wildcards["seed"]))
               for j in paper_jobs if j.rule == "train_shared"}
    assert trained == set(shared)
    configured = paper_config.get("method_params")
    what = {key: trained_at_step0(run, configured) for key, run in shared.items()}
    members: dict[tuple, int] = defaultdict(int)
    for job in paper_jobs:
        if job.rule != "metrics_from_shared":
            continue
        w = job.wildcards
        src = parse_output(job.input[0])
        key = (src["dataset"], src["group"], int(src["seed"]))
        assert (src["dataset"], src["seed"]) == (w["dataset"], w["seed"]), job
        mine = plan.run(Cell(w["dataset"], w["task"], w["setting"], w["method"]), 0, int(w["seed"]))
        assert trained_at_step0(mine, configured) == what[key], f"{w} differs from {key}"
        members[key] += 1
    assert set(members) == set(shared)  # every shared training is read
    assert len(set(what.values())) == len(what), "two shared trainings train the same thing"
    joint = [k for k in shared if k[1].startswith("joint-")]
    assert sorted((d, s) for d, _, s in joint) == sorted({(d, s) for d, _, s in shared})
    assert max(members.values()) > 10  # the sharing is real (many cells per step 0)


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
    for bad in ("results/voc/15-1/overlapped/mib_ucd/step3/model.pt",  # no seed level
                "results/voc/15-1/overlapped/_shared/step0-0123456789/seed42/step0/model.pt",
                "results/voc/_shared/base/seed42/step0/model.pt"):
        with pytest.raises(AssertionError, match="matches 0 patterns"):
            parse_output(bad)
    got = parse_output("results/voc/15-1/overlapped/mib_ucd-tau0.1/seed43/step3/model.pt")
    assert got == {
        "dataset": "voc",
        "task": "15-1",
        "setting": "overlapped",
        "method": "mib_ucd-tau0.1",
        "seed": "43",
        "step": "3",
    }
    got = parse_output("results/ade/_shared/joint-0123456789/seed7/step0/metrics.json")
    assert got == {"dataset": "ade", "group": "joint-0123456789", "seed": "7", "step": "0"}
