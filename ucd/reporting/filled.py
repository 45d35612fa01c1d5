"""Which cells of the paper's tables and figures a set of results leaves empty.

Why: a table prints a dash where a number is missing, and a dash is easy to miss in 11 tables
and figures. The rehearsal (config/rehearsal.yaml) must fill every cell the paper fills;
`missing_cells` lists those it does not, so its benchmark and its CI slice can say so.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable

import pandas as pd

from ucd.reporting.aggregate import cell_stats
from ucd.reporting.grid import build_columns
from ucd.reporting.reference import reference_value
from ucd.reporting.tables import FigureSpec, get_spec


def missing_cells(summary: pd.DataFrame, items: Iterable[str], *,
                  runs: Collection[tuple[str, str, str, str]] | None = None,
                  skip_columns: Collection[str] = ()) -> list[str]:
    """'table/benchmark/method/column' of every cell the paper fills that `summary` leaves
    empty (a figure: every point); only cells of `runs` (dataset, task, setting, method)
    when given; columns in `skip_columns` (e.g. memory without a GPU) are not checked."""
    out = []
    for item in items:
        spec = get_spec(item)
        for method, benchmark, key in _paper_cells(spec):
            if key in skip_columns or (runs is not None
                                       and (*benchmark.split("/"), method) not in runs):
                continue
            block = next(b for b in _blocks(spec) if b.benchmark == benchmark)
            if math.isnan(cell_stats(summary, block, method, key).mean):
                out.append(f"{item}/{benchmark}/{method}/{key}")
    return out


def _blocks(spec) -> tuple:
    return (spec.block,) if isinstance(spec, FigureSpec) else spec.blocks


def _paper_cells(spec) -> list[tuple[str, str, str]]:
    """(method, benchmark, column) of every number the paper prints in a table, or of every
    point of a figure."""
    if isinstance(spec, FigureSpec):
        return [(method, spec.block.benchmark, spec.metric) for method, _ in spec.runs()]
    _, columns = build_columns(spec)
    return [(row.method, c.block.benchmark, c.key) for row in spec.rows for c in columns
            if reference_value(spec.id, row.method, c.block.benchmark, c.key).value is not None]
