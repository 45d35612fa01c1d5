"""The claims' verdicts as Markdown (results/claims.md) and as a self-contained HTML page
(for `snakemake --report`): the level and the rule, an overview, and every check with its
numbers and the one-sided bounds of its mean difference."""

from __future__ import annotations

import html
import math

import pandas as pd

from ucd.reporting.claim_checks import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    MISSING,
    NO_COUNTERPART,
    Check,
    Side,
)
from ucd.reporting.claims import ClaimResult, Rule
from ucd.reporting.tables import settings

COLORS = {
    HOLDS: "#1a7f37",
    FAILS: "#cf222e",
    INCONCLUSIVE: "#9a6700",
    MISSING: "#57606a",
    NO_COUNTERPART: "#57606a",
}
LISTED = 4  # missing runs named in a claim's verdict (every one is in its checks)


def _num(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _side(side: Side | None) -> str:
    """ "62.0 ± 2.0" over several seeds, "62.0" for one, "-" when not evaluated."""
    if side is None or side.stats.n == 0:
        return "-"
    st = side.stats
    return _num(st.mean) if st.n < 2 else f"{_num(st.mean)} ± {_num(st.std)}"


def _listing(items: list[str] | tuple[str, ...], limit: int | None = None) -> str:
    shown = list(items if limit is None else items[:limit])
    more = len(items) - len(shown)
    return "; ".join(shown) + (f"; and {more} more (see the checks)" if more else "")


def verdict_text(
    verdict: str, missing: list[str] | tuple[str, ...], limit: int | None = None
) -> str:
    """The verdict, with what is missing for a claim or check not (fully) evaluated."""
    if verdict == MISSING:
        return f"{MISSING} (missing: {_listing(missing, limit)})"
    return verdict


def check_header(rule: Rule) -> tuple[str, ...]:
    """The columns of a claim's table of checks; the bounds' column names the level."""
    bounds = f"one-sided {rule.percent} bounds of mean d [lower, upper]"
    return ("Benchmark", "Comparison (A - B)", "A", "B", "mean d", "sd d", "n", bounds,
            "Verdict")


def bounds_text(check: Check) -> str:
    """ "[+0.3, +2.1]": the one-sided lower and upper bounds of mean(d); "-" below 2 seeds."""
    lo, hi = check.bounds
    if math.isnan(lo) or math.isnan(hi):
        return "-"
    return f"[{_num(lo, signed=True)}, {_num(hi, signed=True)}]"


def check_row(check: Check) -> list[str]:
    """One check as the cells of check_header()."""
    verdict = verdict_text(check.verdict, check.missing)
    if check.reason:
        verdict += f" ({check.reason})"
    d = check.diff
    spread = _num(d.std) if d.n >= 2 else "-"
    return [
        check.benchmark,
        check.comparison,
        _side(check.a),
        _side(check.b),
        _num(d.mean, signed=True),
        spread,
        str(d.n),
        bounds_text(check),
        verdict,
    ]


def rule_summary(rule: Rule) -> str:
    """The level and the rule in one paragraph, for the head of the page."""
    pct, r = rule.percent, f"{rule.resolution:g}"
    return (
        f"Each check pairs A and B by seed (d = A - B) and tests mean(d) one-sided at the "
        f"{pct} level (`level` in claims.yaml) with a t interval over the n seeds: it holds "
        f"when the lower {pct} bound of mean(d) is above +{r}, does not hold when the upper "
        f"{pct} bound is below -{r}, and is inconclusive otherwise (also with fewer than 2 "
        f"seeds), where {r} mIoU points is the resolution (`resolution` in claims.yaml: a "
        f"floating-point path, as on another machine, moves a cell by about a point). A check "
        f"says holds, or does not hold, wrongly at most {100 - 100 * rule.level:g} % of the "
        f"time if the seeds' differences are independent and normal. The full rule is below."
    )


def counts_text(result: ClaimResult) -> str:
    """e.g. "4 checks: 3 hold, 1 inconclusive; 1 not evaluated"."""
    done = [c for c in result.checks if c.verdict not in (MISSING, NO_COUNTERPART)]
    labels = ((HOLDS, "hold"), (FAILS, "do not hold"), (INCONCLUSIVE, "inconclusive"))
    parts = [f"{result.count(v)} {label}" for v, label in labels if result.count(v)]
    text = f"{len(done)} check{'s' if len(done) != 1 else ''}"
    text += f": {', '.join(parts)}" if parts else ""
    if result.count(MISSING):
        text += f"; {result.count(MISSING)} not evaluated"
    if result.count(NO_COUNTERPART):
        text += f"; {result.count(NO_COUNTERPART)} without embedded counterpart"
    return text


def claim_verdict(result: ClaimResult, limit: int | None = LISTED) -> str:
    """The claim's verdict, the missing runs named (also when the rest was evaluated)."""
    if result.verdict == MISSING:
        return verdict_text(MISSING, result.missing, limit)
    if result.missing:
        return f"{result.verdict} (not evaluated: {_listing(result.missing, limit)})"
    return result.verdict


def source_text(df: pd.DataFrame, summary: str, embedded: bool) -> str:
    """What the verdicts were computed from: benchmarks, methods, seeds."""
    keys = zip(df["dataset"], df["task"], df["setting"], strict=True)
    benches = sorted({f"{d}/{t}/{s}" for d, t, s in keys})
    seeds = sorted({int(s) for s in df["seed"].dropna()})
    text = (
        f"Computed from `{summary}`: {len(benches)} benchmark(s) ({', '.join(benches) or '-'}), "
        f"{df['method'].nunique()} method(s), seed(s) {', '.join(map(str, seeds)) or '-'}."
    )
    if embedded:
        name = settings()["embedded"]["dataset"]
        pairs = ", ".join(f"{k} as {v}" for k, v in settings()["embedded"]["tasks"].items())
        text += (
            f" The paper's benchmarks are read on the embedded {name} benchmark "
            f"({pairs}; ucd/reporting/tables.yaml)."
        )
    return text


def _md_table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def render_markdown(
    results: list[ClaimResult], rule: Rule, df: pd.DataFrame, summary: str, embedded: bool
) -> str:
    """results/claims.md: the level and rule, overview table, the full rule, then every
    claim's checks."""
    lines = ["# The paper's claims, checked on our runs", "", source_text(df, summary, embedded)]
    lines += ["", rule_summary(rule)]
    lines += ["", "Never tuned to make a claim hold: a claim that does not hold is a result.", ""]
    overview = [
        [
            f"`{r.claim.id}`: {r.claim.text}",
            f"**{claim_verdict(r)}**",
            counts_text(r),
            r.claim.where,
        ]
        for r in results
    ]
    lines += _md_table(("Claim", "Verdict", "Checks", "Where in the paper"), overview)
    lines += ["", "## How a verdict is reached", "", "```text", rule.text, "```", "", "## Checks"]
    for r in results:
        lines += ["", f"### `{r.claim.id}`: {claim_verdict(r)}", "", r.claim.text, ""]
        lines += [f"*{r.claim.where}; kind `{r.claim.kind}`, quantifier `{r.claim.quantifier}`.*"]
        lines += ["", *_md_table(check_header(rule), [check_row(c) for c in r.checks])]
    return "\n".join(lines) + "\n"


STYLE = """
body { font-family: sans-serif; font-size: 13px; max-width: 90em; }
table { border-collapse: collapse; margin: 6px 0 14px 0; }
th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
th { border-bottom: 2px solid black; }
pre { background: #f6f8fa; padding: 8px; }
"""


def _html_table(header: tuple[str, ...], rows: list[list[str]]) -> str:
    """Cells are HTML already (escaped by the caller)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _coloured(verdict: str, text: str) -> str:
    return f'<b style="color:{COLORS[verdict]}">{html.escape(text)}</b>'


def render_html(
    results: list[ClaimResult], rule: Rule, df: pd.DataFrame, summary: str, embedded: bool
) -> str:
    """The HTML twin of render_markdown (same content), a standalone page."""
    e = html.escape
    overview = [
        [
            f"<code>{e(r.claim.id)}</code>: {e(r.claim.text)}",
            _coloured(r.verdict, claim_verdict(r)),
            e(counts_text(r)),
            e(r.claim.where),
        ]
        for r in results
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>Claims</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h1>The paper's claims, checked on our runs</h1>",
        f"<p>{e(source_text(df, summary, embedded))}</p>",
        f"<p>{e(rule_summary(rule))}</p>",
        "<p>Never tuned to make a claim hold: a claim that does not hold is a result.</p>",
        _html_table(("Claim", "Verdict", "Checks", "Where in the paper"), overview),
        f"<h2>How a verdict is reached</h2><pre>{e(rule.text)}</pre><h2>Checks</h2>",
    ]
    for r in results:
        rows = []
        for c in r.checks:
            cells = [e(x) for x in check_row(c)]
            cells[-1] = _coloured(c.verdict, check_row(c)[-1])
            rows.append(cells)
        parts += [
            f"<h3><code>{e(r.claim.id)}</code>: {_coloured(r.verdict, claim_verdict(r))}</h3>",
            f"<p>{e(r.claim.text)}<br><i>{e(r.claim.where)}; kind {e(r.claim.kind)}, "
            f"quantifier {e(r.claim.quantifier)}.</i></p>",
            _html_table(tuple(e(h) for h in check_header(rule)), rows),
        ]
    return "\n".join([*parts, "</body></html>", ""])
