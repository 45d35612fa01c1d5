"""The paper's tables and figures as data (tables.yaml): what :mod:`ucd.facts.tablespec` reads
(loading, validation, the embedded-benchmark mapping, the runs each table needs; re-exported
here), and the column labels the reports derive from the task registry."""

from __future__ import annotations

from ucd.facts.tablespec import (  # noqa: F401  (re-exported: the reports' names)
    _STEP_COLUMN,
    TABLES_FILE,
    VALUE_COLUMNS,
    Block,
    FigureSpec,
    Row,
    TableSpec,
    available,
    batch_size_variant,
    display_name,
    embedded_task,
    get_spec,
    load_tables,
    parse_benchmark,
    required_runs,
    settings,
    spec_runs,
)

# ----------------------------------------------------------------- column labels


def task_steps(dataset: str, task: str) -> list[list[int]]:
    """Classes learned at each step, from the task registry (ucd/data/tasks.yaml)."""
    from ucd.data.tasks import get_task

    return [list(s) for s in get_task(dataset, task).steps]


def column_classes(dataset: str, task: str, key: str, step: int | None = None) -> list[int] | None:
    """Foreground classes a column averages over after `step` (default: the last step);
    None for memory/time."""
    steps = task_steps(dataset, task)
    if step is not None:
        steps = steps[: step + 1]
    if key == "old":
        return [c for c in steps[0] if c != 0]
    if key == "new":
        return sorted(c for s in steps[1:] for c in s)
    if key == "all":
        return sorted(c for s in steps for c in s if c != 0)
    m = _STEP_COLUMN.match(key)
    if m:
        k = int(m.group(1))
        if k >= len(steps):
            raise ValueError(f"column {key!r}: task {dataset}/{task} has {len(steps)} steps")
        return sorted(steps[k])
    return None


def class_range_label(classes: list[int]) -> str:
    """ "1-15" for a contiguous run, "20" for one class, "1-3,7" otherwise."""
    if not classes:
        return "-"
    cs = sorted(classes)
    runs, start, prev = [], cs[0], cs[0]
    for c in cs[1:] + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    return ",".join(runs)


def column_label(block: Block, key: str, all_label: str = "all") -> str:
    """Header label of a column, derived from the task's classes."""
    if key == "all":
        return all_label
    if key == "memory":
        return "Memory"
    if key == "time":
        return "Time"
    return class_range_label(column_classes(block.dataset, block.task, key) or [])
