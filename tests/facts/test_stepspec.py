"""The step spec: the facts the method layer derives once from a run config (classes per head,
evaluation step, old model, head init, label policy, typed terms, sharing key), the plan's
single decision about shared trainings, the head-init hook, and the step clock."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import torch

from ucd.facts.config import ConfigError, ModelConfig
from ucd.facts.spec import StepSpec, sharing_key
from ucd.methods import Clock, build_adapters, build_terms, step_spec
from ucd.models import build_model
from ucd.planning.plan import Cell, Plan

REPO = Path(__file__).resolve().parents[2]
CONFIG = {
    "results": "results",
    "seeds": [1],
    "datasets": {"digits": {"root": "results/data/digits"}},
    "grid": [{"benchmarks": ["digits/5-5/disjoint", "digits/5-1/disjoint"],
              "methods": ["ft", "joint", "mib", "mib_sdr", "mib_ucd", "ewc"]}],
}
# digits (tasks.yaml): 10 digit classes + background; 5-5 learns 1-5 then 6-10
STEP0, STEP1 = (0, 1, 2, 3, 4, 5), (6, 7, 8, 9, 10)


def _plan(**changes) -> Plan:
    return Plan({**copy.deepcopy(CONFIG), **changes})


def test_facts_of_an_incremental_step_by_hand():
    spec = _plan().spec(Cell("digits", "5-5", "disjoint", "mib_ucd"), 1, 1)
    assert spec.classes == (STEP0, STEP1) and spec.new_classes == STEP1
    assert (spec.eval_step, spec.n_steps) == (1, 2)
    assert spec.columns == ((1, 2, 3, 4, 5), STEP1)
    assert spec.takes_previous and spec.needs_old_model and not spec.all_classes
    assert spec.ignore_to_background  # MiB's policy: incremental
    assert spec.head_init == "mib_init"
    assert [(t.name, t.weight) for t in spec.terms] == [("mib_ce", 1.0), ("mib_kd", 10.0),
                                                        ("ucd", 0.01)]
    ucd = spec.terms[2]
    assert ucd.batch_coupled and ucd.needs_old_model and ucd.params["temperature"] == 0.07
    assert spec.cost_kind() == "ucd" and spec.shared is None and spec.group is None
    assert spec.key == sharing_key(spec.run)


def test_joint_is_one_step_on_every_class_scored_as_the_last_step():
    spec = _plan().spec(Cell("digits", "5-1", "disjoint", "joint"), 0, 1)
    assert spec.classes == (tuple(range(11)),) and spec.eval_step == 5
    assert spec.all_classes and not spec.takes_previous and not spec.needs_old_model
    assert spec.columns == ((1, 2, 3, 4, 5), (6, 7, 8, 9, 10))
    assert spec.shared is not None and spec.group.startswith("joint-")


def test_mib_sdr_keeps_its_head_and_ewc_trains_its_own_step0():
    plan = _plan()
    assert plan.spec(Cell("digits", "5-5", "disjoint", "mib_sdr"), 1, 1).head_init == "none"
    ewc0 = plan.spec(Cell("digits", "5-5", "disjoint", "ewc"), 0, 1)
    assert ewc0.shared is None and [t.name for t in ewc0.terms] == ["ce", "ewc"]


def test_a_shared_step0_is_the_owners_run_with_its_configured_parameters():
    """Decided once, by the plan: the step 0 MiB shares is ft's run, with ft's parameters as
    configured (method_params.ft), not ft's defaults."""
    plan = _plan(method_params={"ft": {"ce": {"weight": 2.0}}})
    spec = plan.spec(Cell("digits", "5-1", "disjoint", "mib"), 0, 1)
    trained = spec.trained
    assert trained is spec.shared and trained.run.method == "ft"
    assert trained.run.task == "5-5"  # 5-1 and 5-5 train the same step 0
    assert [(t.name, t.weight) for t in spec.terms] == [("ce", 2.0)]
    assert spec.group == f"step0-{trained.key[:10]}" == plan.group(spec_cell(spec), 0, 1)
    assert spec.columns == ((1, 2, 3, 4, 5), ())  # the cell's own task's columns
    with pytest.raises(ConfigError, match="step 0 of mib is ft's shared step 0"):
        step_spec(spec.run)  # without the plan: refused, never trained a second way


def spec_cell(spec: StepSpec) -> Cell:
    r = spec.run
    return Cell(r.dataset, r.task, r.setting, r.method)


def test_the_facts_a_checkpoint_records_read_back_equal():
    spec = _plan().spec(Cell("digits", "5-5", "disjoint", "mib_ucd"), 1, 1)
    assert StepSpec.from_facts(spec.run, spec.facts()) == spec
    with pytest.raises(ValueError, match="missing"):
        StepSpec.from_facts(spec.run, {k: v for k, v in spec.facts().items() if k != "key"})


def test_terms_are_built_from_the_spec():
    spec = _plan().spec(Cell("digits", "5-5", "disjoint", "mib_ucd"), 1, 1)
    terms = build_terms(spec)
    assert [t.name for t in terms] == ["mib_ce", "mib_kd", "ucd"]
    assert [t.weight for t in terms] == [1.0, 10.0, 0.01]


def test_mib_head_init_is_the_mib_init_terms_hook():
    """New rows copy the background row; background and new biases become b0 - log(n + 1)."""
    spec = _plan().spec(Cell("digits", "5-5", "disjoint", "mib"), 1, 1)
    model = build_model(ModelConfig(backbone="resnet18", width=8, head_channels=8,
                                    norm="abn"), [list(STEP0)], pretrained=False)
    with torch.no_grad():
        model.classifier.heads[0].bias.copy_(torch.arange(6.0))
    weight0 = model.classifier.heads[0].weight[0].clone()
    model.classifier.add_step(list(STEP1))
    (adapter,) = build_adapters(spec)
    adapter.adapt_model(model, spec)
    new, bg = model.classifier.heads[1], model.classifier.heads[0]
    expected = 0.0 - math.log(5 + 1)
    assert torch.allclose(new.bias, torch.full((5,), expected))
    assert bg.bias[0].item() == pytest.approx(expected)
    assert torch.equal(new.weight, weight0.expand_as(new.weight))
    sdr = _plan().spec(Cell("digits", "5-5", "disjoint", "mib_sdr"), 1, 1)
    assert build_adapters(sdr) == []


def test_the_clock_counts_batches_epochs_and_iterations():
    clock = Clock(step=2, max_iterations=6)
    for _ in range(3):
        clock.tick()
    clock.end_epoch()
    clock.tick()
    assert (clock.step, clock.epoch, clock.batch, clock.iteration) == (2, 1, 1, 4)


def test_the_contrastive_temperature_default_is_written_once():
    """0.07 (paper 4.2) appears once in the code and the method data: TEMPERATURE."""
    files = [*sorted((REPO / "ucd").rglob("*.py")), REPO / "ucd/methods/methods.yaml"]
    hits = [(str(f.relative_to(REPO)), line.split("=")[0].strip()) for f in files
            for line in f.read_text().splitlines()
            if re.search(r"(?<![\d.])0\.07(?!\d)", line)]
    assert hits == [("ucd/methods/terms/contrastive.py", "TEMPERATURE")], hits


def test_methods_yaml_restates_no_term_default():
    """A term parameter's default lives once, in the term class: methods.yaml names only the
    values where a method departs from it."""
    import yaml

    from ucd.methods import TERMS

    raw = yaml.safe_load((REPO / "ucd/methods/methods.yaml").read_text())
    restated = [(m, t, k) for m, entry in raw.items()
                for t, params in (entry.get("terms") or {}).items()
                for k, v in (params or {}).items()
                if k in TERMS[t].defaults and TERMS[t].defaults[k] == v
                and type(TERMS[t].defaults[k]) is type(v)]
    assert restated == []


def test_a_job_derives_the_plans_spec_from_the_run_config_it_receives():
    """The job gets the run config (--run-json) of the training it runs and derives its spec
    with the same function: the facts equal the plan's for every training of the grid."""
    plan = _plan()
    for cell in plan.cells:
        for k in plan.steps(cell.dataset, cell.task, cell.method):
            trained = plan.trained_spec(cell, k, 1)
            assert step_spec(trained.run).facts() == trained.facts(), (cell, k)
