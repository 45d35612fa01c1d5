"""A table's content before rendering: columns with their header levels, our
values over seeds (mean, std, n), the paper's values, and the bold/underline selection
(by the mean)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ucd.reporting.aggregate import cell_stats
from ucd.reporting.reference import RefCell, reference_value
from ucd.reporting.tables import Block, TableSpec, column_label, settings

UNMARKED_COLUMNS = ("memory", "time")  # resources: never bold/underlined
COLUMN_DECIMALS = {"memory": 1, "time": 0}


@dataclass(frozen=True)
class Column:
    """One value column: its benchmark, key, header texts (top -> bottom) and format."""

    block: Block | None  # None for the leading (check-mark) columns
    key: str
    headers: tuple[str, ...]
    decimals: int
    markable: bool


@dataclass
class TableData:
    """Everything a renderer needs; values are NaN (n 0) where a run is missing."""

    spec: TableSpec
    lead_columns: list[Column]  # check-mark columns (Table 7), before the values
    columns: list[Column]
    values: np.ndarray  # (rows, value columns), our numbers: mean over seeds
    reference: list[list[RefCell]] | None  # the paper's, when comparing
    bold: np.ndarray
    underline: np.ndarray
    std: np.ndarray  # sample std over seeds (NaN below two seeds)
    n: np.ndarray  # seeds per cell

    @property
    def header_levels(self) -> int:
        return len(self.columns[0].headers) if self.columns else 1


def _header_text(block: Block, level: str) -> str:
    names = settings()
    if level == "dataset":
        return names["datasets"].get(block.dataset, block.dataset)
    if level == "setting":
        return names["settings"].get(block.setting, block.setting)
    return block.task


def build_columns(spec: TableSpec) -> tuple[list[Column], list[Column]]:
    """(leading check-mark columns, value columns), headers padded to the same depth."""
    value_cols = []
    for b in spec.blocks:
        tops = tuple(_header_text(b, h) for h in spec.header)
        for key in b.columns:
            value_cols.append(
                Column(
                    block=b,
                    key=key,
                    headers=(*tops, column_label(b, key, spec.all_label)),
                    decimals=COLUMN_DECIMALS.get(key, spec.decimals),
                    markable=key not in UNMARKED_COLUMNS,
                )
            )
    lead_cols = [Column(None, "lead", tuple(h), 0, False) for h in spec.lead_columns]
    depth = max(len(c.headers) for c in value_cols + lead_cols)

    def pad(c: Column) -> Column:
        extra = ("",) * (depth - len(c.headers))
        return Column(c.block, c.key, extra + c.headers, c.decimals, c.markable)

    return [pad(c) for c in lead_cols], [pad(c) for c in value_cols]


def select_best(
    values: np.ndarray,
    parts: list[object],
    decimals: list[int],
    markable: list[bool],
    *,
    bold: bool = True,
    underline: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Bold = best of the column over rows with a part (ties at printed precision all bold);
    underline = best within a part (at least two values) when that part holds no bold cell."""
    n_rows, n_cols = values.shape
    is_bold = np.zeros((n_rows, n_cols), dtype=bool)
    is_under = np.zeros((n_rows, n_cols), dtype=bool)
    eligible = np.array([p is not None for p in parts], dtype=bool)
    for j in range(n_cols):
        if not markable[j]:
            continue
        col = np.round(values[:, j], decimals[j])
        ok = eligible & ~np.isnan(col)
        if not ok.any():
            continue
        if bold:
            is_bold[:, j] = ok & (col == col[ok].max())
        if not underline:
            continue
        for part in {p for p in parts if p is not None}:
            in_part = ok & np.array([p == part for p in parts])
            if in_part.sum() < 2 or (is_bold[:, j] & in_part).any():
                continue
            is_under[:, j] = is_under[:, j] | (in_part & (col == col[in_part].max()))
    return is_bold, is_under


LAYOUTS = ("run", "paper")  # only the rows and column groups that were run; every one


def _fill(
    spec: TableSpec, cols: list[Column], summary: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, std, n) over seeds of every cell; NaN (n 0) where a run is missing."""
    shape = (len(spec.rows), len(cols))
    values, std, n = np.full(shape, math.nan), np.full(shape, math.nan), np.zeros(shape, int)
    if summary is None or summary.empty:
        return values, std, n
    keys = ["dataset", "task", "setting", "method"]
    runs = {k: g for k, g in summary.groupby(keys, sort=False)}  # one filter, not one per cell
    for i, row in enumerate(spec.rows):
        for j, c in enumerate(cols):
            key = (c.block.dataset, c.block.task, c.block.setting, row.method)
            if key in runs:
                st = cell_stats(runs[key], c.block, row.method, c.key)
                values[i, j], std[i, j], n[i, j] = st.mean, st.std, st.n
    return values, std, n


def run_layout(spec: TableSpec, n: np.ndarray) -> tuple[TableSpec, list[int], list[int]]:
    """The table restricted to the rows and blocks (column groups) with at least one run cell:
    (spec, kept row indices, kept value-column indices), the caption naming what is left
    out. With no run cell at all the paper's layout is kept, saying so."""
    ran = n > 0
    if not ran.any():
        note = " No run of this table exists yet: every cell is a dash."
        every = list(range(n.shape[0])), list(range(n.shape[1]))
        return replace(spec, caption=spec.caption + note), *every
    rows = [i for i in range(len(spec.rows)) if ran[i].any()]
    blocks, cols, start = [], [], 0
    for block in spec.blocks:
        span = list(range(start, start + len(block.columns)))
        start += len(block.columns)
        if ran[:, span].any():
            blocks.append(block)
            cols += span
    dropped_rows = [r.name for i, r in enumerate(spec.rows) if i not in rows]
    dropped_blocks = [f"{b.dataset} {b.task} {b.setting}" for b in spec.blocks if b not in blocks]
    parts = [", ".join(x) for x in (dropped_rows, dropped_blocks) if x]
    note = ""
    if parts:
        note = f" Not run, left out (the paper layout shows them): {'; '.join(parts)}."
    spec = replace(
        spec,
        rows=tuple(spec.rows[i] for i in rows),
        blocks=tuple(blocks),
        caption=spec.caption + note,
    )
    return spec, rows, cols


def build_table(
    spec: TableSpec,
    summary: pd.DataFrame | None,
    *,
    compare: bool = False,
    layout: str = "run",
) -> TableData:
    """Fill a table from the summary (None or empty: every cell missing). Layout "run": only
    the rows and column groups with a run; "paper": every row and column of the paper."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown table layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    lead, cols = build_columns(spec)
    values, std, n = _fill(spec, cols, summary)
    if layout == "run":
        spec, rows, kept = run_layout(spec, n)
        values, std, n = (a[np.ix_(rows, kept)] for a in (values, std, n))
        lead, cols = build_columns(spec)
    reference = None
    if compare:
        reference = [
            [reference_value(spec.id, r.method, c.block.benchmark, c.key) for c in cols]
            for r in spec.rows
        ]
    spec = replace(spec, caption=spec.caption + replay_note(spec, summary))
    bold, under = select_best(
        values,
        [r.part for r in spec.rows],
        [c.decimals for c in cols],
        [c.markable for c in cols],
        bold=spec.bold,
        underline=spec.underline,
    )
    return TableData(spec, lead, cols, values, reference, bold, under, std, n)


def replay_note(spec: TableSpec, summary: pd.DataFrame | None) -> str:
    """' Replayed images: RECALL‡ from digits.' naming, per row whose runs replayed, the
    replay sources recorded in their metrics.json (empty when no row replayed)."""
    if summary is None or summary.empty or "replay_source" not in summary.columns:
        return ""
    benches = {b.benchmark for b in spec.blocks}
    where = summary["dataset"] + "/" + summary["task"] + "/" + summary["setting"]
    parts = []
    for row in spec.rows:
        sel = summary[(summary["method"] == row.method) & where.isin(benches)]
        sources = sorted(set(sel["replay_source"].dropna().astype(str)))
        if sources:
            parts.append(f"{row.name} from {', '.join(sources)}")
    return f" Replayed images: {'; '.join(parts)}." if parts else ""


def format_number(value: float | None, decimals: int, missing: str = "-") -> str:
    """Fixed decimals, `missing` for NaN/None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{value:.{decimals}f}"


def spread_text(data: TableData, i: int, j: int) -> str | None:
    """The std over seeds as printed beside the mean ("0.4"), None for fewer than two seeds."""
    if data.n[i, j] < 2 or math.isnan(data.std[i, j]):
        return None
    return format_number(float(data.std[i, j]), data.columns[j].decimals)


def signed_difference(ours: float, paper: float, decimals: int) -> str:
    """ours - paper of the printed (rounded) numbers, with its sign: "+0.6", "-1.2", "+0.0"."""
    diff = round(round(ours, decimals) - round(paper, decimals), decimals)
    return f"{'-' if diff < 0 else '+'}{abs(diff):.{decimals}f}"


def table_frame(data: TableData) -> pd.DataFrame:
    """Our numbers as printed (rounded) in a DataFrame (rows: display names); per value column
    `benchmark/key` (mean over seeds), `benchmark/key/std` (empty below two seeds) and
    `benchmark/key/n` (seeds)."""
    frame = {}
    for j, c in enumerate(data.columns):
        name = f"{c.block.benchmark}/{c.key}"
        std = np.where(data.n[:, j] >= 2, data.std[:, j], math.nan)
        frame[name] = np.round(data.values[:, j], c.decimals)
        frame[f"{name}/std"] = np.round(std, c.decimals)
        frame[f"{name}/n"] = data.n[:, j].astype(int)
    return pd.DataFrame(frame, index=[r.name for r in data.spec.rows])
