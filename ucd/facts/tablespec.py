"""The paper's tables and figures as data (``ucd/reporting/tables.yaml``): loading,
validation, the embedded-benchmark mapping and the runs each table needs.

It sits below the plan and the reporting: the workflow grid (:mod:`ucd.planning.plan`) reads which
runs a table needs from here, the reports (:mod:`ucd.reporting.tables`, which re-exports
these names) read how to lay them out."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

TABLES_FILE = Path(__file__).parents[1] / "reporting" / "tables.yaml"
VALUE_COLUMNS = ("old", "new", "all", "memory", "time")
_STEP_COLUMN = re.compile(r"^step([1-9][0-9]*)$")


@dataclass(frozen=True)
class Block:
    """One benchmark of a table: its columns, in order."""

    dataset: str
    task: str
    setting: str
    columns: tuple[str, ...]

    @property
    def benchmark(self) -> str:
        return f"{self.dataset}/{self.task}/{self.setting}"


@dataclass(frozen=True)
class Row:
    """One table row (a method or a variant) with its display names and part."""

    method: str
    name: str
    latex: str | None  # None: the escaped name
    part: int | None = None
    lead: tuple[bool, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    id: str
    caption: str
    header: tuple[str, ...]
    blocks: tuple[Block, ...]
    rows: tuple[Row, ...]
    decimals: int = 1
    all_label: str = "all"
    underline: bool = True
    bold: bool = True
    row_header: str = "Method"
    row_header_latex: str = "Method"
    lead_columns: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class FigureSpec:
    id: str
    caption: str
    kind: str  # "steps" (metric after each step) or "batch_size"
    block: Block
    rows: tuple[Row, ...]
    metric: str = "all"
    batch_sizes: tuple[int, ...] = ()
    default_batch_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def runs(self) -> list[tuple[str, str]]:
        """(method path name, row method) pairs this figure reads."""
        if self.kind != "batch_size":
            return [(r.method, r.method) for r in self.rows]
        return [
            (batch_size_variant(r.method, b, self.default_batch_size), r.method)
            for r in self.rows
            for b in self.batch_sizes
        ]


def batch_size_variant(method: str, batch_size: int, default: int | None) -> str:
    """Name of the run of `method` with `batch_size` (`<method>-bs<B>`, plain for the default)."""
    return method if batch_size == default else f"{method}-bs{batch_size}"


def parse_benchmark(text: str) -> tuple[str, str, str]:
    """Split "dataset/task/setting" and reject anything else."""
    parts = str(text).split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"benchmark {text!r} must read 'dataset/task/setting'")
    return parts[0], parts[1], parts[2]


def _check_column(table_id: str, key: str) -> None:
    if key not in VALUE_COLUMNS and not _STEP_COLUMN.match(key):
        raise ValueError(
            f"{table_id}: unknown column {key!r}; valid: {', '.join(VALUE_COLUMNS)}, step<K>"
        )


def _rows(raw: dict, table_id: str, methods: dict, n_lead: int) -> tuple[Row, ...]:
    rows, seen = [], set()
    for r in raw.get("rows") or []:
        method = str(r["method"])
        if method in seen:
            raise ValueError(f"{table_id}: method {method!r} listed twice")
        seen.add(method)
        base = method.split("-", 1)[0]
        if base not in methods:
            raise ValueError(f"{table_id}: method {base!r} has no display name in 'methods'")
        shown = methods[base] if base == method else {"name": method}
        name = str(r.get("name", shown.get("name", method)))
        latex = r.get("latex", None if "name" in r else shown.get("latex"))
        lead = tuple(bool(x) for x in r.get("lead", ()))
        if len(lead) != n_lead:
            raise ValueError(f"{table_id}: row {method!r} has {len(lead)} marks, expected {n_lead}")
        rows.append(Row(method, name, None if latex is None else str(latex), r.get("part"), lead))
    if not rows:
        raise ValueError(f"{table_id}: no rows")
    return tuple(rows)


def _block(item: Any, columns: Any, table_id: str) -> Block:
    if isinstance(item, str):
        item = {"benchmark": item}
    cols = tuple(item.get("columns", columns) or ())
    if not cols:
        raise ValueError(f"{table_id}: block {item['benchmark']} has no columns")
    for c in cols:
        _check_column(table_id, c)
    return Block(*parse_benchmark(item["benchmark"]), cols)


def _name(value: str | dict, *, latex: bool = False) -> str:
    """A display text given as a string or {name: plain, latex: LaTeX}."""
    if isinstance(value, dict):
        return str(value.get("latex", value["name"]) if latex else value["name"])
    return str(value)


def _parse(data: dict) -> dict[str, TableSpec | FigureSpec]:
    methods = data["methods"]
    out: dict[str, TableSpec | FigureSpec] = {}
    for tid, raw in data["tables"].items():
        lead_cols = tuple(tuple(c) for c in raw.get("lead_columns", ()))
        blocks = tuple(_block(b, raw.get("columns"), tid) for b in raw["blocks"])
        header = tuple(raw.get("header", ()))
        for h in header:
            if h not in ("dataset", "task", "setting"):
                raise ValueError(f"{tid}: header level {h!r} not one of dataset, task, setting")
        out[tid] = TableSpec(
            id=tid,
            caption=" ".join(str(raw["caption"]).split()),
            header=header,
            blocks=blocks,
            rows=_rows(raw, tid, methods, len(lead_cols)),
            decimals=int(raw.get("decimals", 1)),
            all_label=str(raw.get("all_label", "all")),
            underline=bool(raw.get("underline", True)),
            bold=bool(raw.get("bold", True)),
            row_header=_name(raw.get("row_header", "Method")),
            row_header_latex=_name(raw.get("row_header", "Method"), latex=True),
            lead_columns=lead_cols,
        )
    for fid, raw in data["figures"].items():
        if raw["kind"] not in ("steps", "batch_size"):
            raise ValueError(f"{fid}: kind must be 'steps' or 'batch_size'")
        _check_column(fid, raw.get("metric", "all"))
        out[fid] = FigureSpec(
            id=fid,
            caption=" ".join(str(raw["caption"]).split()),
            kind=raw["kind"],
            block=Block(*parse_benchmark(raw["benchmark"]), (raw.get("metric", "all"),)),
            rows=_rows(raw, fid, methods, 0),
            metric=raw.get("metric", "all"),
            batch_sizes=tuple(int(b) for b in raw.get("batch_sizes", ())),
            default_batch_size=raw.get("default_batch_size"),
        )
    return out


@functools.cache
def _read_yaml(path: str, stamp: tuple[int, int]) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _raw(path: str) -> dict:
    """The parsed YAML file, re-read when it changes (cached on mtime and size)."""
    st = Path(path).stat()
    return _read_yaml(path, (st.st_mtime_ns, st.st_size))


def load_tables(path: str | Path = TABLES_FILE) -> dict[str, TableSpec | FigureSpec]:
    """Every table and figure of tables.yaml by id (table1..table9, figure10, figure11)."""
    st = Path(path).stat()
    return dict(_parsed(str(path), (st.st_mtime_ns, st.st_size)))


@functools.cache
def _parsed(path: str, stamp: tuple[int, int]) -> dict[str, TableSpec | FigureSpec]:
    return _parse(_read_yaml(path, stamp))


def settings() -> dict[str, Any]:
    """The non-table parts of tables.yaml (display names, embedded mapping, ...)."""
    return _raw(str(TABLES_FILE))


def display_name(method: str, *, latex: bool = False) -> str:
    """Display name of a method or variant (variants keep their path name)."""
    entry = settings()["methods"].get(method)
    if entry is None:
        return method
    return str(entry.get("latex", entry["name"]) if latex else entry["name"])


def embedded_task(dataset: str, task: str) -> str | None:
    """The embedded benchmark's task standing for (dataset, task), or None if unmapped."""
    return settings()["embedded"]["tasks"].get(f"{dataset}/{task}")


def _embed_block(block: Block) -> Block | None:
    task = embedded_task(block.dataset, block.task)
    if task is None:
        return None
    return replace(block, dataset=settings()["embedded"]["dataset"], task=task)


def get_spec(item_id: str, *, embedded: bool = False) -> TableSpec | FigureSpec:
    """One table or figure, mapped onto the embedded benchmark when `embedded`."""
    specs = load_tables()
    if item_id not in specs:
        raise ValueError(f"unknown table or figure {item_id!r}; valid: {', '.join(specs)}")
    spec = specs[item_id]
    if not embedded:
        return spec
    if isinstance(spec, FigureSpec):
        block = _embed_block(spec.block)
        if block is None:
            raise ValueError(f"{item_id}: {spec.block.benchmark} has no embedded counterpart")
        return replace(spec, block=block, caption=_embedded_caption([spec.block], spec.caption))
    blocks = tuple(b for b in map(_embed_block, spec.blocks) if b is not None)
    if not blocks:
        names = ", ".join(b.benchmark for b in spec.blocks)
        raise ValueError(
            f"{item_id} is not available on the embedded benchmark: none of {names} is mapped "
            f"(mapped: {', '.join(settings()['embedded']['tasks'])})"
        )
    return replace(spec, blocks=blocks, caption=_embedded_caption(spec.blocks, spec.caption))


def _embedded_caption(blocks: tuple[Block, ...] | list[Block], caption: str) -> str:
    """Say which paper benchmarks the embedded tasks stand for."""
    pairs = {}
    for b in blocks:
        task = embedded_task(b.dataset, b.task)
        if task is not None:
            pairs[f"{b.dataset} {b.task}"] = task
    mapping = ", ".join(f"{k} as {v}" for k, v in pairs.items())
    name = settings()["embedded"]["dataset"]
    return f"Embedded {name} benchmark ({mapping}); the paper's caption: {caption}"


def available(*, embedded: bool = False) -> list[str]:
    """Ids of the tables and figures that can be produced (all, or those mapped when embedded)."""
    ids = []
    for item_id in load_tables():
        try:
            get_spec(item_id, embedded=embedded)
        except ValueError:
            continue
        ids.append(item_id)
    return ids


def spec_runs(spec: TableSpec | FigureSpec) -> list[tuple[str, str, str, str]]:
    """(dataset, task, setting, method) cells one table or figure needs, reference-only excluded."""
    skip = set(settings()["reference_only"])
    if isinstance(spec, FigureSpec):
        b = spec.block
        return [(b.dataset, b.task, b.setting, m) for m, _ in spec.runs()]
    return [
        (b.dataset, b.task, b.setting, r.method)
        for b in spec.blocks
        for r in spec.rows
        if r.method not in skip
    ]


def required_runs(
    table_ids: list[str] | tuple[str, ...] | None = None, *, embedded: bool = False
) -> list[tuple[str, str, str, str]]:
    """Every (dataset, task, setting, method) run the given tables/figures need, without
    duplicates, in table order. None = every available one. Unavailable embedded ids are skipped."""
    ids = available(embedded=embedded) if table_ids is None else list(table_ids)
    out: dict[tuple[str, str, str, str], None] = {}
    for item_id in ids:
        try:
            spec = get_spec(item_id, embedded=embedded)
        except ValueError:
            if embedded and item_id in load_tables():
                continue
            raise
        out.update(dict.fromkeys(spec_runs(spec)))
    return list(out)
