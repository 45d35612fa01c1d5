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

from ucd.config import IDENTITY, deep_merge
from ucd.plan import Cell, Plan
from ucd.reporting.tables import batch_size_variant, get_spec

REPO = Path(__file__).resolve().parents[1]
SEED = 42
# The key each ablation varies; its value per row is the number in the row's name.
VARIED = {"table8": "params.ucd.temperature", "table9": "params.ucd.weight",
          "figure10": "params.ucd.temperature"}


def flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


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
