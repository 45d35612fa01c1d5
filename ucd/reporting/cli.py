"""`ucd report ...`: collect metrics, write tables (LaTeX/HTML/CSV), figures, qualitative
maps and the verdicts on the paper's claims. `register(subparsers)` plugs into ucd/cli.py;
`main(argv)` runs alone."""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import replace
from pathlib import Path

from ucd.reporting.tables import parse_benchmark


def _summary(path: str | None):
    from ucd.reporting.aggregate import read_summary

    return read_summary(path) if path else None


def _cmd_collect(args: argparse.Namespace) -> int:
    from ucd.reporting.aggregate import collect

    df = collect(args.results, out=args.out)
    n_runs = len(df.groupby(["dataset", "task", "setting", "method"])) if len(df) else 0
    print(f"{len(df)} step result(s) of {n_runs} run(s) -> {args.out}")
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from ucd.reporting.grid import build_table, table_frame
    from ucd.reporting.html import render_html
    from ucd.reporting.latex import render_latex, standalone_document
    from ucd.reporting.tables import TableSpec, get_spec

    spec = get_spec(args.table, embedded=args.embedded)
    if not isinstance(spec, TableSpec):
        raise ValueError(f"{args.table} is a figure: use `ucd report figure {args.table}`")
    if args.note:
        spec = replace(spec, caption=f"{args.note} {spec.caption}")
    if args.compare and args.embedded:
        raise ValueError(
            "--compare needs the paper's benchmarks: the embedded benchmark has no "
            "published numbers"
        )
    data = build_table(spec, _summary(args.summary), compare=args.compare, layout=args.layout)
    render = {
        ".tex": lambda: (standalone_document if args.standalone else str)(render_latex(data)),
        ".html": lambda: render_html(data), ".htm": lambda: render_html(data),
        ".csv": lambda: table_frame(data).to_csv(index_label="method"),
    }
    outs = [Path(o) for o in args.out]
    bad = [o for o in outs if o.suffix.lower() not in render]  # before anything is written
    if bad:
        raise ValueError(f"--out {bad[0]}: unknown format {bad[0].suffix!r}; use .tex, .html "
                         "or .csv")
    for out in outs:
        text = render[out.suffix.lower()]()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"{spec.id} -> {out}")
    return 0


def _cmd_figure(args: argparse.Namespace) -> int:
    from ucd.reporting.figures import plot_figure, save_figure, stamp
    from ucd.reporting.tables import FigureSpec, get_spec

    spec = get_spec(args.figure, embedded=args.embedded)
    if not isinstance(spec, FigureSpec):
        raise ValueError(f"{args.figure} is a table: use `ucd report table {args.figure}`")
    df = _summary(args.summary)
    paths = save_figure(stamp(plot_figure(df, spec), args.note), args.out)
    print(f"{spec.id} -> {', '.join(map(str, paths))}")
    return 0


def _cmd_curves(args: argparse.Namespace) -> int:
    from ucd.reporting.figures import plot_curves, save_figure, stamp
    from ucd.reporting.tables import Block

    block = Block(*parse_benchmark(args.benchmark), ("all",))
    fig = plot_curves(_summary(args.summary), block, args.methods)
    paths = save_figure(stamp(fig, args.note), args.out)
    print(f"curves {args.benchmark} -> {', '.join(map(str, paths))}")
    return 0


def _cmd_qualitative(args: argparse.Namespace) -> int:
    from ucd.reporting.figures import save_figure, stamp
    from ucd.reporting.qualitative import plot_qualitative
    from ucd.reporting.tables import display_name

    dataset, task, setting = parse_benchmark(args.benchmark)
    if args.predictions:
        preds = {}
        for item in args.predictions:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise ValueError(f"--predictions {item!r}: expected NAME=PATH")
            preds[display_name(name)] = path
    else:
        if not args.methods:
            raise ValueError("give --methods (with --results) or --predictions NAME=PATH ...")
        root = Path(args.results) / dataset / task / setting
        preds = {
            display_name(m): _final_predictions(
                _seed_dir(root / m, args.seed), dataset, task, args.step
            )
            for m in args.methods
        }
    fig = plot_qualitative(
        preds, dataset=dataset, ids=args.ids, max_images=args.n, title=args.title
    )
    paths = save_figure(stamp(fig, args.note), args.out)
    print(f"qualitative {args.benchmark} -> {', '.join(map(str, paths))}")
    return 0


def _seed_dir(method_dir: Path, seed: int | None) -> Path:
    """A run's seed{seed}/ directory; by default the lowest seed it has."""
    if seed is not None:
        return method_dir / f"seed{seed}"
    seeds = sorted(
        int(d.name[4:]) for d in method_dir.glob("seed*") if d.name[4:].isdigit() and d.is_dir()
    )
    if not seeds:
        raise FileNotFoundError(f"{method_dir} holds no seed{{seed}}/ run directory")
    return method_dir / f"seed{seeds[0]}"


def _final_predictions(run_dir: Path, dataset: str, task: str, step: int | None) -> Path:
    """predictions.npz of `step` of one seed's run, by default of the last step (step 0 for a
    single-step run such as Joint, whose step 0 already saw every class)."""
    from ucd.reporting.tables import task_steps

    if step is None:
        steps = task_steps(dataset, task)
        step = len(steps) - 1
        metrics = run_dir / "step0" / "metrics.json"
        if not (run_dir / f"step{step}").exists() and metrics.is_file():
            seen = json.loads(metrics.read_text(encoding="utf-8")).get("classes_seen", [])
            if len(seen) == sum(len(s) for s in steps):
                step = 0
    return run_dir / f"step{step}" / "predictions.npz"


def _cmd_claims(args: argparse.Namespace) -> int:
    from ucd.reporting.claims import evaluate_claims, load_claims
    from ucd.reporting.claims_report import claim_verdict, render_html, render_markdown

    out = Path(args.out)
    render = {".md": render_markdown, ".html": render_html, ".htm": render_html}
    if out.suffix.lower() not in render:
        raise ValueError(f"--out {out}: unknown format {out.suffix!r}; use .md or .html")
    df = _summary(args.summary)
    rule, claims = load_claims(args.claims) if args.claims else load_claims()
    results = evaluate_claims(
        df, claims, embedded=args.embedded, level=rule.level, resolution=rule.resolution
    )
    text = render[out.suffix.lower()](results, rule, df, args.summary, args.embedded)
    if args.note:  # first thing the page says
        text = (f"**{args.note}**\n\n{text}" if out.suffix.lower() == ".md" else
                text.replace("<body>", f"<body><p><b>{html.escape(args.note)}</b></p>", 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    for r in results:
        print(f"{r.claim.id}: {claim_verdict(r)}")
    print(f"{len(results)} claim(s) -> {out}")
    return 0


def _cmd_fidelity(args: argparse.Namespace) -> int:
    from ucd.reporting import fidelity_report as R
    from ucd.reporting.fidelity import CALIBRATION, HELD_OUT, evaluate_fidelity, load_fidelity

    render = {".md": R.render_markdown, ".html": R.render_html, ".htm": R.render_html}
    outs = [Path(o) for o in args.out]
    bad = [o for o in outs if o.suffix.lower() not in render]  # before anything is written
    if bad:
        raise ValueError(f"--out {bad[0]}: unknown format {bad[0].suffix!r}; use .md or .html")
    df = _summary(args.summary)
    spec = load_fidelity(args.fidelity) if args.fidelity else load_fidelity()
    results, unmatched = evaluate_fidelity(df, spec)
    items = R.document(results, unmatched, spec, df, args.summary)
    for r in results:
        print(f"{r.ours} (the paper's {r.paper}): tau-b {R.summary_row(r)[3]}, calibration "
              f"rows {R.summary_row(r)[4]}")
    print(R.agreement_text(results, CALIBRATION))
    print(R.agreement_text(results, HELD_OUT))
    for out in outs:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render[out.suffix.lower()](items), encoding="utf-8")
        print(f"fidelity -> {out}")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from ucd.reporting.tables import available, required_runs

    if args.list:
        print("\n".join(available(embedded=args.embedded)))
        return 0
    for run in required_runs(args.ids or None, embedded=args.embedded):
        print("/".join(run))
    return 0


def _add_commands(sub: argparse._SubParsersAction) -> None:
    """Every `ucd report` subcommand."""
    p = sub.add_parser("collect", help="every metrics.json -> one summary CSV")
    p.add_argument("--results", default="results", help="results directory (default: results)")
    p.add_argument("--out", default="results/summary.csv", help="summary CSV to write")
    p.set_defaults(func=_cmd_collect)

    p = sub.add_parser("table", help="one paper table as LaTeX (.tex), HTML (.html) or CSV")
    p.add_argument("table", help="table1 ... table9")
    p.add_argument("--summary", help="summary CSV (omit: every cell a dash)")
    p.add_argument("--out", required=True, nargs="+",
                   help="output files; each one's suffix picks its format")
    p.add_argument("--compare", action="store_true", help="paper's number, difference")
    p.add_argument("--embedded", action="store_true", help="embedded (digits) tasks")
    p.add_argument("--standalone", action="store_true", help="a compilable LaTeX document")
    p.add_argument(
        "--layout",
        choices=("run", "paper"),
        default="run",
        help="run (default): only the rows and column groups with a run; paper: every row "
        "and column of the paper's table, dashes where not run",
    )
    p.set_defaults(func=_cmd_table)

    p = sub.add_parser("figure", help="Fig. 10 or Fig. 11 (PDF and PNG)")
    p.add_argument("figure", help="figure10 or figure11")
    p.add_argument("--summary", required=True)
    p.add_argument("--out", required=True, help="output path; .pdf and .png are written")
    p.add_argument("--embedded", action="store_true")
    p.set_defaults(func=_cmd_figure)

    p = sub.add_parser("curves", help="mIoU all/old/new after each step of one benchmark")
    p.add_argument("--summary", required=True)
    p.add_argument("--benchmark", required=True, help="dataset/task/setting")
    p.add_argument("--methods", nargs="+", help="default: every method run on the benchmark")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_curves)

    p = sub.add_parser("qualitative", help="image / ground truth / predictions maps")
    p.add_argument("--benchmark", required=True, help="dataset/task/setting")
    p.add_argument("--predictions", nargs="+", metavar="NAME=PATH", help="predictions.npz files")
    p.add_argument("--results", default="results", help="with --methods: results directory")
    p.add_argument(
        "--methods", nargs="+", help="read RESULTS/.../METHOD/seedS/stepK/predictions.npz"
    )
    p.add_argument("--seed", type=int, help="seed of the runs shown (default: each run's lowest)")
    p.add_argument("--step", type=int, help="step of the predictions (default: the last)")
    p.add_argument("--ids", nargs="+", help="image ids to show (default: the first --n)")
    p.add_argument("--n", type=int, default=4, help="number of images (default: 4)")
    p.add_argument("--title")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_qualitative)

    _add_judging_commands(sub)


def _add_judging_commands(sub: argparse._SubParsersAction) -> None:
    """The commands that hold runs against the paper: claims, fidelity; and runs."""
    p = sub.add_parser("claims", help="a verdict on each claim of the paper (claims.yaml)")
    p.add_argument("--summary", required=True, help="summary CSV (`ucd report collect`)")
    p.add_argument("--out", required=True, help="claims.md (Markdown) or claims.html")
    p.add_argument("--embedded", action="store_true", help="paper benchmarks as digits tasks")
    p.add_argument("--claims", help="claims file (default: ucd/reporting/claims.yaml)")
    p.set_defaults(func=_cmd_claims)

    p = sub.add_parser(
        "fidelity", help="rank correlation and retention of each method against the paper's"
    )
    p.add_argument("--summary", required=True, help="summary CSV (`ucd report collect`)")
    p.add_argument("--out", nargs="+", default=["results/fidelity.md"],
                   help="fidelity.md (Markdown) and/or fidelity.html (default: "
                   "results/fidelity.md)")
    p.add_argument("--fidelity", help="fidelity file (default: ucd/reporting/fidelity.yaml)")
    p.set_defaults(func=_cmd_fidelity)

    p = sub.add_parser("runs", help="the (dataset/task/setting/method) runs tables need")
    p.add_argument("ids", nargs="*", help="table/figure ids (default: all available)")
    p.add_argument("--embedded", action="store_true")
    p.add_argument("--list", action="store_true", help="list the available table/figure ids")
    p.set_defaults(func=_cmd_runs)
    for name in ("table", "figure", "curves", "qualitative", "claims"):
        sub.choices[name].add_argument("--note", help="put first in the caption (a rehearsal's)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `report` and its subcommands to the top-level `ucd` parser."""
    p = subparsers.add_parser("report", help="tables, figures and summaries of the results")
    _add_commands(p.add_subparsers(dest="report_command", required=True))


def main(argv: list[str] | None = None) -> int:
    """Run `ucd report` alone: main(["table", "table1", "--out", "t.tex"])."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="ucd report", description=__doc__)
    _add_commands(parser.add_subparsers(dest="report_command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"ucd report: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
