"""The paper's published numbers (reference.yaml), mapped onto the columns of
tables.yaml so they can be printed beside ours."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ucd.reporting.tables import TableSpec, load_tables

REFERENCE_FILE = Path(__file__).with_name("reference.yaml")
_CELL = re.compile(r"^(-?[0-9]+(?:\.[0-9]+)?)([bu]?)$")


@dataclass(frozen=True)
class RefCell:
    """One published number as printed (None = "-", not reported)."""

    value: float | None
    bold: bool = False
    underline: bool = False


# table id -> method -> (benchmark, column key) -> cell
Reference = dict[str, dict[str, dict[tuple[str, str], RefCell]]]


def parse_cell(token: object) -> RefCell:
    """Read one transcribed cell: 73.4, "73.4u" (underlined), "50.1b" (bold) or "-"."""
    if isinstance(token, int | float) and not isinstance(token, bool):
        return RefCell(float(token))
    text = str(token).strip()
    if text == "-":
        return RefCell(None)
    m = _CELL.match(text)
    if not m:
        raise ValueError(f"reference cell {token!r}: expected a number, optionally suffixed b or u")
    return RefCell(float(m.group(1)), m.group(2) == "b", m.group(2) == "u")


@functools.cache
def _read_yaml(path: str, stamp: tuple[int, int]) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_reference(path: str | Path = REFERENCE_FILE) -> Reference:
    """table id -> method -> (benchmark, column key) -> RefCell, checked against tables.yaml."""
    st = Path(path).stat()
    return _build(str(path), (st.st_mtime_ns, st.st_size))


@functools.cache
def _build(path: str, stamp: tuple[int, int]) -> Reference:
    raw = _read_yaml(path, stamp)
    specs = load_tables()
    out: Reference = {}
    for tid, rows in raw.items():
        spec = specs.get(tid)
        if not isinstance(spec, TableSpec):
            raise ValueError(f"{path}: {tid!r} is not a table of tables.yaml")
        keys = [(b.benchmark, c) for b in spec.blocks for c in b.columns]
        known = {r.method for r in spec.rows}
        out[tid] = {}
        for method, cells in rows.items():
            if method not in known:
                raise ValueError(f"{path}: {tid} has no row {method!r}")
            if len(cells) != len(keys):
                raise ValueError(
                    f"{path}: {tid}/{method} has {len(cells)} values, the table has {len(keys)} "
                    "columns"
                )
            out[tid][method] = dict(zip(keys, (parse_cell(c) for c in cells), strict=True))
    return out


def reference_value(table_id: str, method: str, benchmark: str, column: str) -> RefCell:
    """The published cell, or RefCell(None) when the paper has none."""
    row = load_reference().get(table_id, {}).get(method, {})
    return row.get((benchmark, column), RefCell(None))
