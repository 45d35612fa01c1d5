"""Fidelity of our runs to the paper's (fidelity.yaml): for every benchmark of a summary that
stands for a paper benchmark, Kendall's tau-b of the old-class mIoU after the last step
against the paper's, and each method's retention (after the last step / after step 0) and
its band beside the paper's, each row marked calibration or held-out."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from ucd.reporting.aggregate import Stats, seed_stats, seed_values
from ucd.reporting.reference import load_reference, reference_value
from ucd.reporting.stats import kendall_tau_b
from ucd.reporting.tables import (
    Block,
    Row,
    TableSpec,
    load_tables,
    parse_benchmark,
    settings,
)

FIDELITY_FILE = Path(__file__).with_name("fidelity.yaml")
CALIBRATION, HELD_OUT = "calibration", "held-out"
FORGETS, PARTIAL, KEEPS, NO_BAND = "forgets", "partial", "keeps", "-"
METRICS = ("old", "new", "all")


@dataclass(frozen=True)
class FidelitySpec:
    """fidelity.yaml, validated: what is compared, the step-0 references, bands, calibration."""

    metric: str
    decimals: int
    exclude: dict[str, str]
    ours_step0: str
    paper_step0_method: str
    paper_step0_source: str
    forgets: float
    keeps: float
    calibration_benchmarks: tuple[str, ...]
    calibration_methods: tuple[str, ...]

    def band(self, retention: float) -> str:
        """forgets (r < forgets), keeps (r > keeps), partial in between; "-" for NaN."""
        if math.isnan(retention):
            return NO_BAND
        if retention < self.forgets:
            return FORGETS
        return KEEPS if retention > self.keeps else PARTIAL

    def role(self, paper_benchmark: str, method: str) -> str:
        """calibration for a calibration method on a calibration benchmark, else held-out."""
        calibration = (
            paper_benchmark in self.calibration_benchmarks
            and method in self.calibration_methods
        )
        return CALIBRATION if calibration else HELD_OUT


def _known_methods(where: str, methods: object) -> tuple[str, ...]:
    names = tuple(str(m) for m in (methods or ()))
    unknown = [m for m in names if m not in settings()["methods"]]
    if unknown:
        raise ValueError(f"fidelity.yaml {where}: unknown method(s) {', '.join(unknown)} "
                         "(not in tables.yaml methods)")
    return names


def parse_fidelity(data: dict) -> FidelitySpec:
    """A fidelity.yaml mapping, checked; errors name the key and the problem."""
    metric = data.get("metric")
    if metric not in METRICS:
        raise ValueError(f"fidelity.yaml metric: {metric!r} is not one of {', '.join(METRICS)}")
    bands = data.get("bands") or {}
    forgets, keeps = (float(bands.get(k, math.nan)) for k in ("forgets", "keeps"))
    if not 0.0 < forgets < keeps < 1.0:
        raise ValueError(
            f"fidelity.yaml bands: need 0 < forgets < keeps < 1 (got {forgets}, {keeps})"
        )
    step0 = data.get("step0") or {}
    paper = step0.get("paper") or {}
    exclude = {str(k): " ".join(str(v).split()) for k, v in (data.get("exclude") or {}).items()}
    _known_methods("exclude", exclude)
    (paper_method,) = _known_methods("step0.paper.method", [paper.get("method")])
    calibration = data.get("calibration") or {}
    benches = tuple(str(b) for b in calibration.get("benchmarks") or ())
    for bench in benches:
        parse_benchmark(bench)
    texts = (("step0.ours", step0.get("ours")), ("step0.paper.source", paper.get("source")))
    for key, text in texts:
        if not text:
            raise ValueError(f"fidelity.yaml {key}: missing (say what the step-0 value is)")
    return FidelitySpec(
        metric=str(metric),
        decimals=int(data.get("decimals", 1)),
        exclude=exclude,
        ours_step0=" ".join(str(step0["ours"]).split()),
        paper_step0_method=paper_method,
        paper_step0_source=" ".join(str(paper["source"]).split()),
        forgets=forgets,
        keeps=keeps,
        calibration_benchmarks=benches,
        calibration_methods=_known_methods("calibration.methods", calibration.get("methods")),
    )


@functools.cache
def _load(path: str, stamp: tuple[int, int]) -> FidelitySpec:
    with open(path, encoding="utf-8") as f:
        return parse_fidelity(yaml.safe_load(f))


def load_fidelity(path: str | Path = FIDELITY_FILE) -> FidelitySpec:
    """fidelity.yaml, re-read when the file changes."""
    st = Path(path).stat()
    return _load(str(path), (st.st_mtime_ns, st.st_size))


# ----------------------------------------------------------------- the paper's side


def paper_benchmark(dataset: str, task: str, setting: str) -> str | None:
    """The paper benchmark a run stands for: an embedded task through tables.yaml's
    `embedded:` (digits 5-5 -> voc/15-5), a paper task as itself; None if unmapped."""
    embedded = settings()["embedded"]
    if dataset != embedded["dataset"]:
        return f"{dataset}/{task}/{setting}"
    papers = [p for p, t in embedded["tasks"].items() if str(t) == task]
    if len(papers) > 1:
        raise ValueError(f"tables.yaml embedded: {dataset} {task} stands for several paper "
                         f"tasks ({', '.join(papers)})")
    return f"{papers[0]}/{setting}" if papers else None


def reference_table(benchmark: str, metric: str) -> TableSpec | None:
    """The first table of tables.yaml with published numbers that shows `benchmark` with the
    `metric` column (Table 1 for VOC 15-5), None if there is none."""
    published = load_reference()
    for spec in load_tables().values():
        if not isinstance(spec, TableSpec) or spec.id not in published:
            continue
        if any(b.benchmark == benchmark and metric in b.columns for b in spec.blocks):
            return spec
    return None


# ----------------------------------------------------------------- one benchmark


@dataclass(frozen=True)
class MethodFidelity:
    """One method on one benchmark: ours and the paper's value, retention and band."""

    method: str
    name: str
    role: str
    ours: Stats  # the metric after the last step, over the finished seeds
    ours_step0: float  # mean after step 0, over the seeds that also finished
    ours_retention: float
    ours_band: str
    paper: float
    paper_retention: float
    paper_band: str

    @property
    def agree(self) -> bool | None:
        """Whether the bands agree; None when either has none."""
        if NO_BAND in (self.ours_band, self.paper_band):
            return None
        return self.ours_band == self.paper_band


@dataclass(frozen=True)
class Ranking:
    """Kendall's tau-b over n methods (NaN below 2 or without any order)."""

    tau: float
    n: int


@dataclass(frozen=True)
class BenchmarkFidelity:
    """Our runs of one benchmark against the paper's table for the benchmark it stands for."""

    ours: str
    paper: str
    table: str
    paper_step0: float  # NaN: the paper's table has no step-0 reference row
    rows: tuple[MethodFidelity, ...]
    ranking: Ranking
    calibration_ranking: Ranking
    not_in_paper: tuple[str, ...]  # run here, no number in the paper's table
    not_run: tuple[str, ...]  # a number in the paper's table, not finished here
    excluded: tuple[str, ...]  # methods of fidelity.yaml `exclude` run here

    @property
    def setting(self) -> str:
        return self.ours.rsplit("/", 1)[1]


def _ours(df: pd.DataFrame, block: Block, method: str, metric: str) -> tuple[Stats, float, float]:
    """(the metric after the last step over seeds, the mean after step 0 and the retention,
    both over the seeds that have both)."""
    last = seed_values(df, block, method, metric)
    first = seed_values(df, block, method, metric, step=0)
    paired = last.index.intersection(first.index)
    if paired.empty:
        return seed_stats(last), math.nan, math.nan
    num, den = float(last.loc[paired].mean()), float(first.loc[paired].mean())
    return seed_stats(last), den, (num / den if den > 0 else math.nan)


def _ranking(rows: list[MethodFidelity], decimals: int) -> Ranking:
    ours = [round(r.ours.mean, decimals) for r in rows]
    paper = [round(r.paper, decimals) for r in rows]
    return Ranking(kendall_tau_b(ours, paper), len(rows))


def _method_row(
    df: pd.DataFrame,
    block: Block,
    paper: tuple[str, TableSpec, float],
    row: Row,
    spec: FidelitySpec,
) -> MethodFidelity:
    """One method of the paper's table that ran here."""
    bench, table, step0 = paper
    stats, ours_step0, retention = _ours(df, block, row.method, spec.metric)
    value = reference_value(table.id, row.method, bench, spec.metric).value
    paper_retention = value / step0 if step0 > 0 else math.nan
    return MethodFidelity(
        method=row.method,
        name=row.name,
        role=spec.role(bench, row.method),
        ours=stats,
        ours_step0=ours_step0,
        ours_retention=retention,
        ours_band=spec.band(retention),
        paper=float(value),
        paper_retention=paper_retention,
        paper_band=spec.band(paper_retention),
    )


def benchmark_fidelity(
    df: pd.DataFrame, block: Block, spec: FidelitySpec
) -> BenchmarkFidelity | None:
    """One benchmark of the summary against the paper; None if it stands for no benchmark
    with published numbers."""
    bench = paper_benchmark(block.dataset, block.task, block.setting)
    table = None if bench is None else reference_table(bench, spec.metric)
    if table is None:
        return None
    ref = reference_value(table.id, spec.paper_step0_method, bench, spec.metric).value
    step0 = math.nan if ref is None else float(ref)
    here = df[(df["dataset"] == block.dataset) & (df["task"] == block.task)
              & (df["setting"] == block.setting)]
    ran = list(dict.fromkeys(here["method"]))
    published = {r.method for r in table.rows
                 if reference_value(table.id, r.method, bench, spec.metric).value is not None}
    rows, not_run = [], []
    for row in table.rows:
        if row.method not in published or row.method in spec.exclude:
            continue
        if seed_values(df, block, row.method, spec.metric).empty:
            not_run.append(row.name)
            continue
        rows.append(_method_row(df, block, (bench, table, step0), row, spec))
    calibration = [r for r in rows if r.role == CALIBRATION]
    return BenchmarkFidelity(
        ours=block.benchmark,
        paper=bench,
        table=table.id,
        paper_step0=step0,
        rows=tuple(rows),
        ranking=_ranking(rows, spec.decimals),
        calibration_ranking=_ranking(calibration, spec.decimals),
        not_in_paper=tuple(m for m in ran if m not in published and m not in spec.exclude),
        not_run=tuple(not_run),
        excluded=tuple(m for m in spec.exclude if m in ran),
    )


def evaluate_fidelity(
    df: pd.DataFrame, spec: FidelitySpec | None = None
) -> tuple[list[BenchmarkFidelity], list[str]]:
    """(every benchmark of the summary against the paper, in the summary's order; the
    benchmarks that stand for no paper benchmark with published numbers)."""
    spec = load_fidelity() if spec is None else spec
    keys = dict.fromkeys(zip(df["dataset"], df["task"], df["setting"], strict=True))
    results, unmatched = [], []
    for dataset, task, setting in keys:
        result = benchmark_fidelity(df, Block(dataset, task, setting, ()), spec)
        if result is None:
            unmatched.append(f"{dataset}/{task}/{setting}")
        else:
            results.append(result)
    return results, unmatched


def band_agreement(results: list[BenchmarkFidelity], role: str) -> dict[str, tuple[int, int]]:
    """Per setting (and "both"), (rows whose bands agree, rows with both bands) of a role."""
    counts: dict[str, list[int]] = {}
    for result in results:
        for row in result.rows:
            if row.role != role or row.agree is None:
                continue
            for key in (result.setting, "both"):
                c = counts.setdefault(key, [0, 0])
                c[0] += bool(row.agree)
                c[1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}
