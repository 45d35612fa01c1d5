"""The paper's grid (config.yaml + config/paper.yaml) resolves in every cell and step, and each
ablation row (Tables 8-9, Figures 10-11) differs from its base row only in the value it varies.

The varied value is read from the table's own row (its name, or Figure 11's batch size), not
from the config's variants, so a variant that sets the wrong value, or misses a value its base
row gets from another layer, fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import flat
from ucd.facts.config import IDENTITY, deep_merge
from ucd.planning.plan import Cell, Plan
from ucd.reporting.tables import batch_size_variant, get_spec

REPO = Path(__file__).resolve().parents[1]
SEED = 42
# The key each ablation varies; its value per row is the number in the row's name.
VARIED = {"table8": "params.ucd.temperature", "table9": "params.ucd.weight",
          "figure10": "params.ucd.temperature"}


def paper_config() -> dict:
    load = [yaml.safe_load((REPO / p).read_text()) for p in ("config.yaml", "config/paper.yaml")]
    return deep_merge(*load)


# An override of a base row's method (as issue 14 found: it did not reach the variants).
BASE_OVERRIDE = [{"match": {"dataset": "voc", "method": ["mib", "mib_ucd"]},
                  "params": {"mib_kd": {"weight": 20}}, "optim": {"epochs": 31}}]


@pytest.fixture(scope="module", params=["paper", "paper+override"])
def plan(request) -> Plan:
    config = paper_config()
    if request.param == "paper+override":
        config["overrides"] = [*(config.get("overrides") or []), *BASE_OVERRIDE]
    p = Plan(config)
    p.check()  # every step of every cell, and the shared trainings they reuse
    return p


def ablation_rows() -> list[tuple[str, str, str, str, str, float]]:
    """(item, benchmark, row method, base method, varied key, value) of every ablation row."""
    rows = []
    for item, key in VARIED.items():
        spec = get_spec(item)
        blocks = spec.blocks if hasattr(spec, "blocks") else (spec.block,)
        for block in blocks:
            for row in spec.rows:
                value = float(re.search(r"[0-9.]+$", row.name).group())
                rows.append((item, block.benchmark, row.method, "mib_ucd", key, value))
    fig = get_spec("figure11")
    for row in fig.rows:
        for size in fig.batch_sizes:
            name = batch_size_variant(row.method, size, fig.default_batch_size)
            rows.append(("figure11", fig.block.benchmark, name, row.method, "optim.batch_size",
                         size))
    return rows


def test_every_cell_and_step_of_the_paper_grid_resolves(plan):
    n = sum(len(plan.steps(c.dataset, c.task, c.method)) for c in plan.cells)
    assert len(plan.cells) > 200 and n > 800
    assert plan.seeds == (SEED,)
    assert {c.dataset for c in plan.cells} == {"voc", "ade", "cityscapes"}


@pytest.mark.parametrize("item, bench, method, base, key, value", ablation_rows())
def test_ablation_row_differs_from_its_base_row_only_in_the_varied_value(
    plan, item, bench, method, base, key, value
):
    row_cell, base_cell = Cell(*bench.split("/"), method), Cell(*bench.split("/"), base)
    assert row_cell in plan.cells and base_cell in plan.cells
    for step in plan.steps(row_cell.dataset, row_cell.task, row_cell.method):
        mine = flat(plan.run(row_cell, step, SEED).to_dict())
        theirs = flat(plan.run(base_cell, step, SEED).to_dict())
        for name in IDENTITY:
            mine.pop(name), theirs.pop(name)
        assert mine[key] == pytest.approx(value), (item, method, step)
        diff = {k: (theirs.get(k), mine.get(k)) for k in mine.keys() | theirs.keys()
                if mine.get(k) != theirs.get(k)}
        assert set(diff) <= {key}, f"{item} {method} step {step} also differs in {diff}"


def test_step0_of_an_ablation_row_is_the_training_it_names(plan):
    """The temperature and weight rows reuse their base row's step 0; a batch-size row trains
    step 0 with its own batch."""
    for _item, bench, method, base, key, value in ablation_rows():
        row_cell, base_cell = Cell(*bench.split("/"), method), Cell(*bench.split("/"), base)
        shared = plan.shared_run(row_cell, 0, SEED)
        assert shared is not None, method
        if key == "optim.batch_size":
            assert shared.optim.batch_size == value
        else:
            assert plan.group(row_cell, 0, SEED) == plan.group(base_cell, 0, SEED)


# Each row's conventions as the code that produced it runs (the peer files cited in
# config/paper.yaml): precision, devices x images per device, training labels, test protocol.
MIB = {"amp": "none", "devices": 2, "per_device": 12, "labels": "always", "images": "seen",
       "unseen": "ignore", "background": "score"}
UCD_CODE = {**MIB, "labels": "never", "unseen": "background"}
PLOP = {**UCD_CODE, "amp": "fp16"}
SDR = {**MIB, "devices": 1, "per_device": 8}
CONVENTIONS = [
    ("voc/15-1/overlapped/mib", MIB), ("voc/15-5/disjoint/lwf", MIB),
    ("voc/19-1/disjoint/ewc", MIB), ("ade/100-50/disjoint/mib", {**MIB, "background": "ignore"}),
    ("cityscapes/13-6/overlapped/ilt", MIB),
    ("voc/15-1/overlapped/ucd_official", UCD_CODE), ("voc/15-5/disjoint/mib_ucd", UCD_CODE),
    ("ade/100-50/disjoint/mib_cd", UCD_CODE),
    ("cityscapes/13-6/overlapped/mib_ucd", {**UCD_CODE, "labels": "always", "unseen": "ignore"}),
    ("voc/15-1/overlapped/plop", PLOP), ("ade/100-10/disjoint/plop_ucd", PLOP),
    ("voc/15-5/disjoint/sdr", SDR), ("voc/19-1/overlapped/mib_sdr", SDR),
    ("voc/15-1/disjoint/ilt_dagger", SDR),
    ("ade/100-50/disjoint/mib_sdr", {**SDR, "per_device": 4, "background": "ignore"}),
]


@pytest.mark.parametrize("cell, want", CONVENTIONS)
def test_rows_take_the_conventions_of_the_code_behind_their_numbers(plan, cell, want):
    c = Cell(*cell.split("/"))
    for step in plan.steps(c.dataset, c.task, c.method):
        run = plan.run(c, step, SEED)
        got = {"amp": run.train.amp, "devices": run.train.devices,
               "per_device": run.optim.batch_size // run.train.devices,
               "labels": run.labels.ignore_to_background, "images": run.eval.images,
               "unseen": run.eval.unseen, "background": run.eval.background}
        assert got == want, (cell, step)


def test_sdr_rows_run_sdr_s_step_0_and_its_19_1_rates(plan):
    for method in ("sdr", "mib_sdr"):
        cell = Cell("voc", "19-1", "disjoint", method)
        step0, step1 = plan.run(cell, 0, SEED), plan.run(cell, 1, SEED)
        assert (step0.optim.lr, step1.optim.lr) == (1e-3, 1e-4)
        for term in ("sdr_attraction", "sdr_repulsion", "sdr_sparsity"):
            assert step0.params[term]["at_step0"] is False
    assert plan.run(Cell("voc", "15-1", "disjoint", "sdr"), 1, SEED).optim.lr == 1e-3


def test_every_trained_row_of_table3_has_the_scripts_ade_rate_as_a_variant(plan):
    """Every peer script trains ADE's later steps at lr 1e-3 (the paper: 1e-2)."""
    spec = get_spec("table3")
    for method in {r.method for r in spec.rows} - {"incseg", "joint"}:
        cell, variant = Cell("ade", "100-50", "disjoint", method), f"{method}-lr0.001"
        assert variant in plan.config["variants"], variant
        for step in (0, 1):
            mine = flat(plan.run(cell._replace(method=variant), step, SEED).to_dict())
            theirs = flat(plan.run(cell, step, SEED).to_dict())
            for name in IDENTITY:
                mine.pop(name), theirs.pop(name)
            diff = {k for k in mine if mine[k] != theirs[k]}
            assert diff == (set() if step == 0 else {"optim.lr"}), (variant, step)
            assert step == 0 or mine["optim.lr"] == 1e-3
