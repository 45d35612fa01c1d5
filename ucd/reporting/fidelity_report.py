"""The fidelity report as Markdown (results/fidelity.md) and as a self-contained HTML page
(its section of the `snakemake --report` of all_tables): one document, two renderings."""

from __future__ import annotations

import html
import math

import pandas as pd

from ucd.reporting.aggregate import Stats
from ucd.reporting.fidelity import (
    CALIBRATION,
    HELD_OUT,
    BenchmarkFidelity,
    FidelitySpec,
    MethodFidelity,
    Ranking,
    band_agreement,
)
from ucd.reporting.tables import display_name, settings

TITLE = "Fidelity of our runs to the paper"
def row_header(metric: str) -> tuple[str, ...]:
    """The columns of a benchmark's table of methods."""
    return (
        "Method",
        "Row",
        f"Ours: {metric}, last step",
        f"Ours: {metric}, step 0",
        "Ours: retention",
        "Ours: band",
        f"Paper: {metric}, last step",
        "Paper: retention",
        "Paper: band",
        "Bands agree",
    )


SUMMARY_HEADER = (
    "Benchmark",
    "Paper's benchmark",
    "Table",
    "Kendall tau-b (methods)",
    "tau-b, calibration rows (methods)",
    "Bands agree: calibration",
    "Bands agree: held-out",
)

# A document: ("h1" | "h2" | "p", text) or ("table", header, rows).
Item = tuple


def _num(value: float, signed: bool = False, decimals: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f} %"


def _stats(st: Stats) -> str:
    if st.n == 0:
        return "-"
    return _num(st.mean) if st.n < 2 else f"{_num(st.mean)} ± {_num(st.std)}"


def _ranking(r: Ranking) -> str:
    """ "+0.60 (12)": tau-b and the number of methods ranked."""
    return f"{_num(r.tau, signed=True, decimals=2)} ({r.n})" if r.n else "-"


def _ranking_text(r: Ranking) -> str:
    if r.n == 0:
        return "none here"
    if math.isnan(r.tau):
        return f"- ({r.n} method(s): no order to compare)"
    return f"{_num(r.tau, signed=True, decimals=2)} over {r.n} methods"


def _table_name(table_id: str) -> str:
    return f"Table {table_id.removeprefix('table')}"


def _agreement(result: BenchmarkFidelity, role: str) -> str:
    rows = [r for r in result.rows if r.role == role and r.agree is not None]
    return f"{sum(bool(r.agree) for r in rows)} of {len(rows)}" if rows else "-"


def summary_row(r: BenchmarkFidelity) -> list[str]:
    """One benchmark as the cells of SUMMARY_HEADER."""
    return [
        r.ours,
        r.paper,
        _table_name(r.table),
        _ranking(r.ranking),
        _ranking(r.calibration_ranking),
        _agreement(r, CALIBRATION),
        _agreement(r, HELD_OUT),
    ]


def method_row(row: MethodFidelity) -> list[str]:
    """One method as the cells of row_header()."""
    agree = {True: "yes", False: "no", None: "-"}[row.agree]
    return [
        row.name,
        row.role,
        _stats(row.ours),
        _num(row.ours_step0),
        _pct(row.ours_retention),
        row.ours_band,
        _num(row.paper),
        _pct(row.paper_retention),
        row.paper_band,
        agree,
    ]


def method_text(spec: FidelitySpec, df: pd.DataFrame, summary: str) -> str:
    """What was compared, and how: the paragraph under the title."""
    benches = sorted({f"{d}/{t}/{s}" for d, t, s in zip(df["dataset"], df["task"],
                                                         df["setting"], strict=True)})
    emb = settings()["embedded"]
    pairs = ", ".join(f"{emb['dataset']} {v} as {k}" for k, v in emb["tasks"].items())
    forgets, keeps = (f"{100 * x:g} %" for x in (spec.forgets, spec.keeps))
    calibration = ", ".join(display_name(m) for m in spec.calibration_methods)
    return (
        f"Computed from `{summary}`: {len(benches)} benchmark(s). The embedded benchmark's "
        f"tasks stand for the paper's ({pairs}; ucd/reporting/tables.yaml). Compared: the "
        f"{spec.metric}-class mIoU after the last step, ours as the mean over seeds, against "
        f"the paper's (ucd/reporting/reference.yaml, the same column of the first table "
        f"showing the benchmark). Kendall's tau-b ranks the methods both have, the values "
        f"compared at {spec.decimals} decimal(s) (equal as printed: a tie). Retention = "
        f"{spec.metric} after the last step / {spec.metric} after step 0. Ours: "
        f"{spec.ours_step0}. The paper's: {spec.paper_step0_source}. Bands: forgets below "
        f"{forgets}, partial {forgets} to {keeps}, keeps above {keeps}. Calibration rows: "
        f"{calibration} on {', '.join(spec.calibration_benchmarks)} (or the embedded task "
        f"standing for it); every other row is held-out (ucd/reporting/fidelity.yaml)."
    )


def agreement_text(results: list[BenchmarkFidelity], role: str) -> str:
    """The summary line of the calibration (or held-out) rows: how many fall in the paper's
    band, per setting."""
    label = {CALIBRATION: "Calibration set", HELD_OUT: "Held-out rows"}[role]
    counts = band_agreement(results, role)
    if not counts:
        return f"{label}: none was run (or no band could be computed)."
    agree, total = counts.pop("both")
    per = ", ".join(f"{k} {a} of {n}" for k, (a, n) in counts.items())
    return f"{label}: {agree} of {total} rows in the paper's band ({per})."


def _benchmark_items(result: BenchmarkFidelity, spec: FidelitySpec) -> list[Item]:
    table = _table_name(result.table)
    ref = display_name(spec.paper_step0_method)
    items: list[Item] = [
        ("h2", f"{result.ours}: the paper's {result.paper} ({table})"),
        ("p", f"The paper's step-0 reference: {_num(result.paper_step0)} ({ref}, "
              f"{spec.metric} classes, {table}). Kendall tau-b: "
              f"{_ranking_text(result.ranking)}; calibration rows: "
              f"{_ranking_text(result.calibration_ranking)}."),
        ("table", row_header(spec.metric), [method_row(r) for r in result.rows]),
    ]
    lines = [
        (f"Run here, no number in the paper's {table}", result.not_in_paper),
        (f"In the paper's {table}, not run or not finished here", result.not_run),
        ("Not ranked", [f"{display_name(m)} ({spec.exclude[m]})" for m in result.excluded]),
    ]
    items += [("p", f"{label}: {', '.join(names)}.") for label, names in lines if names]
    return items


def document(
    results: list[BenchmarkFidelity],
    unmatched: list[str],
    spec: FidelitySpec,
    df: pd.DataFrame,
    summary: str,
) -> list[Item]:
    """The report as a list of headings, paragraphs and tables."""
    rows = [summary_row(r) for r in results]
    items: list[Item] = [("h1", TITLE), ("p", method_text(spec, df, summary)), ("h2", "Summary")]
    items += [("table", SUMMARY_HEADER, rows)]
    items += [("p", agreement_text(results, role)) for role in (CALIBRATION, HELD_OUT)]
    if not results:
        items.append(("p", "No benchmark of the summary stands for a paper benchmark."))
    if unmatched:
        items.append(("p", f"No paper counterpart with published numbers: "
                           f"{', '.join(unmatched)}."))
    for result in results:
        items += _benchmark_items(result, spec)
    return items


def render_markdown(items: list[Item]) -> str:
    """results/fidelity.md."""

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out: list[str] = []
    for item in items:
        if item[0] == "table":
            out += [line(item[1]), line(["---"] * len(item[1])), *(line(r) for r in item[2])]
        else:
            out.append({"h1": "# ", "h2": "## ", "p": ""}[item[0]] + item[1])
        out.append("")
    return "\n".join(out)


STYLE = """
body { font-family: sans-serif; font-size: 13px; max-width: 90em; }
table { border-collapse: collapse; margin: 6px 0 14px 0; }
th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; }
th { border-bottom: 2px solid black; }
td.yes { color: #1a7f37; font-weight: bold; }
td.no { color: #cf222e; font-weight: bold; }
"""


def _html_table(header: tuple[str, ...], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="{c}">{c}</td>' if c in ("yes", "no") else f"<td>{html.escape(c)}</td>"
            for c in r
        ) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(items: list[Item]) -> str:
    """The HTML twin of render_markdown, a standalone page."""
    parts = [
        "<!DOCTYPE html>",
        f'<html><head><meta charset="utf-8"><title>{TITLE}</title>',
        f"<style>{STYLE}</style></head><body>",
    ]
    for item in items:
        if item[0] == "table":
            parts.append(_html_table(item[1], item[2]))
        else:
            text = html.escape(item[1]).replace("`", "")
            parts.append(f"<{item[0]}>{text}</{item[0]}>")
    return "\n".join([*parts, "</body></html>", ""])
