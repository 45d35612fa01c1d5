"""The checks a claim splits into: A against B on one benchmark, the differences paired by
seed; one function per claim kind of claims.yaml gathers them, and `judge` (the rule of
claims.yaml, at its level) gives each its verdict; the benchmarks in scope."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from ucd.reporting.aggregate import Stats, seed_stats, seed_values
from ucd.reporting.stats import one_sided_bounds
from ucd.reporting.tables import (
    Block,
    FigureSpec,
    batch_size_variant,
    display_name,
    embedded_task,
    get_spec,
    parse_benchmark,
    settings,
)

HOLDS, FAILS, INCONCLUSIVE, MISSING = "holds", "does not hold", "inconclusive", "not evaluated"
PENDING = "not judged yet"  # paired differences gathered, the rule not applied (judged())
NO_COUNTERPART = "no embedded counterpart"  # a paper benchmark the embedded one cannot stand for


@dataclass(frozen=True)
class Side:
    """One side of a check over the paired seeds: what it is and its statistics."""

    label: str
    stats: Stats


@dataclass(frozen=True)
class Check:
    """A against B on one benchmark: d = A - B per paired seed (`diffs`), their statistics,
    the one-sided bounds of mean(d) at the rule's level, and the verdict on it."""

    benchmark: str
    comparison: str
    a: Side | None = None
    b: Side | None = None
    diff: Stats = Stats(math.nan, math.nan, 0)
    verdict: str = MISSING
    reason: str = ""
    missing: tuple[str, ...] = ()
    diffs: tuple[float, ...] = ()
    bounds: tuple[float, float] = (math.nan, math.nan)


def judge(
    diffs: pd.Series | list[float], level: float, resolution: float = 0.0
) -> tuple[tuple[float, float], str, str]:
    """((lower, upper) one-sided `level` t bounds of mean(d), verdict, reason) by the rule of
    claims.yaml: holds if lower > resolution, does not hold if upper < -resolution,
    inconclusive otherwise (a difference within the resolution is not resolved)."""
    st = seed_stats(diffs)
    bounds = one_sided_bounds(st, level)
    if st.n < 2:
        return bounds, INCONCLUSIVE, "fewer than 2 seeds"
    if bounds[0] > resolution:
        return bounds, HOLDS, ""
    if bounds[1] < -resolution:
        return bounds, FAILS, ""
    if resolution and (bounds[0] > 0 or bounds[1] < 0):
        return bounds, INCONCLUSIVE, f"a bound within the resolution ({resolution:g}) of 0"
    return bounds, INCONCLUSIVE, "the bounds straddle 0"


def judged(check: Check, level: float, resolution: float = 0.0) -> Check:
    """A check with its verdict by the rule (a pending one; any other is returned as is)."""
    if check.verdict != PENDING:
        return check
    bounds, verdict, reason = judge(list(check.diffs), level, resolution)
    return replace(check, bounds=bounds, verdict=verdict, reason=reason)


def paired_check(
    benchmark: str, comparison: str, a: tuple[str, pd.Series], b: tuple[str, pd.Series]
) -> Check:
    """A - B over the seeds both have, to be judged; the sides over the same seeds."""
    diffs = a[1].sub(b[1]).dropna()
    sides = [Side(label, seed_stats(values.loc[diffs.index])) for label, values in (a, b)]
    values = tuple(float(v) for v in diffs)
    return Check(
        benchmark, comparison, sides[0], sides[1], seed_stats(values), PENDING, diffs=values
    )


def compare(
    df: pd.DataFrame,
    block: Block,
    a: str,
    b: str,
    metric: str,
    names: tuple[str, str] | None = None,
    note: str = "",
) -> Check:
    """Method a against method b on one benchmark and metric (model after the last step);
    `names` shown for them (default: their display names)."""
    na, nb = names or (display_name(a), display_name(b))
    label = f"{na} - {nb}, {metric}{note}"
    va, vb = (seed_values(df, block, m, metric) for m in (a, b))
    absent = [f"{m} on {block.benchmark}" for m, v in ((a, va), (b, vb)) if v.empty]
    if absent:
        return Check(block.benchmark, label, missing=tuple(absent))
    return paired_check(block.benchmark, label, (na, va), (nb, vb))


def no_counterpart(benchmark: str) -> Check:
    """A paper benchmark that the embedded benchmark has no task for: shown, never counted."""
    return Check(benchmark, "-", verdict=NO_COUNTERPART, reason="tables.yaml embedded:")


# ----------------------------------------------------------------- benchmarks in scope


def _embedded(dataset: str, task: str) -> tuple[str, str] | None:
    """The embedded benchmark's (dataset, task) standing for a paper task, None if unmapped."""
    mapped = embedded_task(dataset, task)
    return None if mapped is None else (settings()["embedded"]["dataset"], mapped)


def _map(paper: list[tuple[str, str, str]], embedded: bool) -> tuple[list[Block], list[Check]]:
    """Paper benchmarks as run: themselves, or their embedded counterparts (a no-counterpart
    check for one that has none)."""
    if not embedded:
        return [Block(d, t, s, ()) for d, t, s in paper], []
    blocks, unmapped = [], []
    for d, t, s in paper:
        pair = _embedded(d, t)
        if pair is None:
            unmapped.append(no_counterpart(f"{d}/{t}/{s}"))
        else:
            blocks.append(Block(*pair, s, ()))
    return blocks, unmapped


def scope(
    df: pd.DataFrame, fields: dict[str, Any], methods: list[str], embedded: bool
) -> tuple[list[Block], list[Check]]:
    """Benchmarks a claim is checked on, and missing checks for those that cannot be run."""
    default = fields.get("family", fields.get("batch_sizes_of", "any"))
    on = fields.get("on", default)
    if on == "any":
        sel = df[df["method"].isin(methods)]
        keys = dict.fromkeys(zip(sel["dataset"], sel["task"], sel["setting"], strict=True))
        if not keys:
            names = ", ".join(methods)
            return [], [Check("any", "-", missing=(f"{names} on any benchmark",))]
        return [Block(*k, ()) for k in keys], []
    if isinstance(on, list):
        return _map([parse_benchmark(b) for b in on], embedded)
    spec = get_spec(str(on))
    blocks = [spec.block] if isinstance(spec, FigureSpec) else list(spec.blocks)
    return _map([(b.dataset, b.task, b.setting) for b in blocks], embedded)


# ----------------------------------------------------------------- one function per kind


def greater(df: pd.DataFrame, f: dict[str, Any], blocks: list[Block]) -> list[Check]:
    """a > b for each metric; with batch_sizes_of, at every batch size of that figure."""
    figure = get_spec(f["batch_sizes_of"]) if "batch_sizes_of" in f else None
    sizes = figure.batch_sizes if isinstance(figure, FigureSpec) else (None,)
    checks = []
    for block in blocks:
        for metric in f["metrics"]:
            for bs in sizes:
                if bs is None:
                    checks.append(compare(df, block, f["a"], f["b"], metric))
                    continue
                a, b = (
                    batch_size_variant(m, bs, figure.default_batch_size) for m in (f["a"], f["b"])
                )
                names = (display_name(f["a"]), display_name(f["b"]))
                checks.append(compare(df, block, a, b, metric, names, f", batch size {bs}"))
    return checks


def ratio_below(df: pd.DataFrame, f: dict[str, Any], blocks: list[Block]) -> list[Check]:
    """ratio x the step-0 value > the value after the last step, seed by seed."""
    method, key, ratio = f["method"], f["metric"], float(f["ratio"])
    name = display_name(method)
    checks = []
    for block in blocks:
        label = f"{ratio:g} x {name} {key} after step 0 - {name} {key} after the last step"
        first = seed_values(df, block, method, key, step=0)
        last = seed_values(df, block, method, key)
        runs = (("step 0", first), ("last step", last))
        absent = [f"{method} {what} on {block.benchmark}" for what, v in runs if v.empty]
        if absent:
            checks.append(Check(block.benchmark, label, missing=tuple(absent)))
            continue
        a = (f"{ratio:g} x step 0", ratio * first)
        checks.append(paired_check(block.benchmark, label, a, ("last step", last)))
    return checks


def upper_bound(df: pd.DataFrame, f: dict[str, Any], blocks: list[Block]) -> list[Check]:
    """The bound method above every other method run on the benchmark."""
    method, checks = f["method"], []
    for block in blocks:
        sel = (
            (df["dataset"] == block.dataset)
            & (df["task"] == block.task)
            & (df["setting"] == block.setting)
        )
        others = [m for m in dict.fromkeys(df.loc[sel, "method"]) if m != method]
        if not others:
            note = f"another method than {method} on {block.benchmark}"
            checks.append(
                Check(block.benchmark, f"{display_name(method)} - others", missing=(note,))
            )
        checks += [compare(df, block, method, m, f["metric"]) for m in others]
    return checks


def best_of(df: pd.DataFrame, f: dict[str, Any], blocks: list[Block]) -> list[Check]:
    """`best` above every other row of the table `family` (rows named as in the table)."""
    spec = get_spec(f["family"])
    names = {r.method: f"{spec.row_header} {r.name}" for r in spec.rows}
    best = f["best"]
    return [
        compare(df, block, best, m, f["metric"], (names[best], names[m]))
        for block in blocks
        for m in names
        if m != best
    ]


def _gain(df: pd.DataFrame, block: Block, a: str, b: str, key: str) -> pd.Series:
    return seed_values(df, block, a, key).sub(seed_values(df, block, b, key)).dropna()


def gain_grows(df: pd.DataFrame, f: dict[str, Any], embedded: bool) -> list[Check]:
    """The gain of a over b larger on the task with more steps, per pair and setting."""
    a, b, key = f["a"], f["b"], f["metric"]
    checks = []
    for pair in f["task_pairs"]:
        tasks = [tuple(str(x).split("/", 1)) for x in pair]
        mapped = [_embedded(*t) for t in tasks] if embedded else tasks
        for setting in f["settings"]:
            bench = f"{pair[0]} vs {pair[1]}, {setting}"
            if None in mapped:
                checks.append(no_counterpart(bench))
                continue
            more, fewer = (Block(d, t, setting, ()) for d, t in mapped)
            bench = f"{more.dataset}/{more.task} vs {fewer.task}/{setting}"
            label = f"gain of {display_name(a)} over {display_name(b)} ({key}), more - fewer steps"
            runs = [(m, blk) for blk in (more, fewer) for m in (a, b)]
            absent = [
                f"{m} on {blk.benchmark}" for m, blk in runs if seed_values(df, blk, m, key).empty
            ]
            if absent:
                checks.append(Check(bench, label, missing=tuple(absent)))
                continue
            sides = [(f"gain on {blk.task}", _gain(df, blk, a, b, key)) for blk in (more, fewer)]
            checks.append(paired_check(bench, label, *sides))
    return checks
