"""`ucd report ...` through ucd.reporting.cli.main(argv)."""

from __future__ import annotations

import numpy as np
import pytest

from ucd.reporting.cli import main


@pytest.fixture
def summary(tmp_path, metrics_writer):
    root = tmp_path / "results"
    for method, v in (("mib", 0.5), ("mib_ucd", 0.6)):
        metrics_writer(root, "digits", "5-5", "disjoint", method, 0, {c: v for c in range(6)})
        metrics_writer(root, "digits", "5-5", "disjoint", method, 1, {c: v for c in range(11)})
    out = tmp_path / "summary.csv"
    assert main(["collect", "--results", str(root), "--out", str(out)]) == 0
    return out


def test_collect_prints_counts(summary, capsys, tmp_path):
    assert (
        main(["report", "collect", "--results", str(tmp_path / "results"), "--out", str(summary)])
        == 0
    )
    assert "4 step result(s) of 2 run(s)" in capsys.readouterr().out


def test_table_formats(summary, tmp_path):
    tex, html, csv = (tmp_path / "t" / f"table9.{s}" for s in ("tex", "html", "csv"))
    for out in (tex, html, csv):
        assert (
            main(["table", "table9", "--summary", str(summary), "--out", str(out), "--embedded"])
            == 0
        )
    text = tex.read_text()
    # the run layout: MiB+UCD (the row 0.01) on 5-5 disjoint, one seed, nothing else
    assert r"\begin{tabular}{lccc}" in text and r"0.01 & \textbf{60.0} & " in text
    assert "<b>60.0</b>" in html.read_text()
    lines = csv.read_text().splitlines()
    head = "method,digits/5-5/disjoint/old,digits/5-5/disjoint/old/std,digits/5-5/disjoint/old/n"
    assert lines[0].startswith(head) and "8-2" not in lines[0]
    assert lines[1:] == ["0.01,60.0,,1,60.0,,1,60.0,,1"]  # one seed: no std
    for out in (tex, csv):
        argv = ["table", "table9", "--summary", str(summary), "--out", str(out), "--embedded"]
        assert main([*argv, "--layout", "paper"]) == 0
    assert r"\begin{tabular}{lcccccc}" in tex.read_text() and "--" in tex.read_text()
    lines = csv.read_text().splitlines()
    assert len(lines) == 1 + 5  # every row of Table 9
    # MiB+UCD: one seed (no std), 8-2 not run (no mean, no std, n 0)
    assert lines[3].startswith("0.01,60.0,,1,60.0,,1,60.0,,1,,,0,")
    standalone = tmp_path / "s.tex"
    assert main(["table", "table9", "--out", str(standalone), "--standalone"]) == 0
    assert standalone.read_text().startswith("\\documentclass")


def test_table_compare(summary, tmp_path):
    out = tmp_path / "table1.tex"
    assert main(["table", "table1", "--summary", str(summary), "--out", str(out), "--compare"]) == 0
    assert "{\\scriptsize(64.7)}" in out.read_text()  # MiB 15-5 disjoint, not run on VOC here


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["table", "table42", "--out", "x.tex"], "unknown table or figure 'table42'"),
        (["table", "figure10", "--out", "x.tex"], "figure10 is a figure"),
        (["table", "table3", "--out", "x.tex", "--embedded"], "table3 is not available"),
        (
            ["table", "table1", "--out", "x.tex", "--embedded", "--compare"],
            "--compare needs the paper's benchmarks",
        ),
        (["table", "table1", "--out", "x.docx"], "unknown format '.docx'"),
        (["table", "table1", "--out", "x.tex", "--summary", "none.csv"], "none.csv does not exist"),
        (["figure", "table1", "--summary", "SUMMARY", "--out", "f.png"], "table1 is a table"),
        (
            ["curves", "--summary", "SUMMARY", "--benchmark", "digits/5-5", "--out", "c.png"],
            "'digits/5-5' must read 'dataset/task/setting'",
        ),
        (["qualitative", "--benchmark", "digits/5-5/disjoint", "--out", "q.png"], "give --methods"),
        (
            [
                "qualitative",
                "--benchmark",
                "digits/5-5/disjoint",
                "--predictions",
                "mib",
                "--out",
                "q.png",
            ],
            "expected NAME=PATH",
        ),
        (
            [
                "qualitative",
                "--benchmark",
                "digits/5-5/disjoint",
                "--methods",
                "mib",
                "--results",
                "nowhere",
                "--out",
                "q.png",
            ],
            "disjoint/mib holds no seed{seed}/ run directory",
        ),
    ],
)
def test_errors_are_reported(argv, message, summary, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [str(summary) if a == "SUMMARY" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ucd report: error:") and message in err


def test_figures_and_curves(summary, tmp_path):
    out = tmp_path / "fig" / "figure11.png"
    assert (
        main(["figure", "figure11", "--summary", str(summary), "--out", str(out), "--embedded"])
        == 0
    )
    assert out.is_file() and out.with_suffix(".pdf").is_file()
    out = tmp_path / "curves.pdf"
    assert (
        main(
            [
                "curves",
                "--summary",
                str(summary),
                "--benchmark",
                "digits/5-5/disjoint",
                "--methods",
                "mib",
                "mib_ucd",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.is_file() and out.with_suffix(".png").is_file()


def test_qualitative_from_results(tmp_path, metrics_writer):
    # Joint has one step that saw every class: its step 0 is its final model
    metrics_writer(
        tmp_path / "results", "digits", "5-5", "disjoint", "joint", 0, {c: 0.5 for c in range(11)}
    )
    for method, step in (("mib", 1), ("mib_ucd", 1), ("joint", 0)):
        d = tmp_path / "results" / "digits" / "5-5" / "disjoint" / method / "seed42" / f"step{step}"
        d.mkdir(parents=True, exist_ok=True)
        np.savez(
            d / "predictions.npz",
            ids=np.array(["a", "b"]),
            image=np.zeros((2, 8, 8, 3), np.uint8),
            label=np.ones((2, 8, 8), np.uint8),
            pred=np.ones((2, 8, 8), np.uint8),
        )
    out = tmp_path / "q.png"
    assert (
        main(
            [
                "qualitative",
                "--benchmark",
                "digits/5-5/disjoint",
                "--results",
                str(tmp_path / "results"),
                "--methods",
                "mib",
                "mib_ucd",
                "joint",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.is_file() and out.with_suffix(".pdf").is_file()


def test_runs_listing(capsys):
    assert main(["runs", "table9", "--embedded"]) == 0
    lines = capsys.readouterr().out.split()
    assert lines[0] == "digits/5-5/disjoint/mib_ucd-lam0" and len(lines) == 10
    assert main(["runs", "--list", "--embedded"]) == 0
    assert "table3" not in capsys.readouterr().out.split()


def test_registers_under_the_top_level_cli(tmp_path):
    import argparse

    from ucd.reporting.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", "runs", "figure11"])
    assert args.func(args) == 0


def test_claims_markdown_and_html(tmp_path, metrics_writer, capsys):
    """MiB+UCD above MiB by 11 and 12 points on two seeds; everything else not run."""
    root = tmp_path / "results"
    for seed in (1, 2):
        for method, v, step in (("mib", 0.5, 0.01), ("mib_ucd", 0.6, 0.02)):
            iou = {c: v + step * seed for c in range(11)}
            metrics_writer(root, "digits", "5-5", "disjoint", method, 1, iou, seed=seed)
    summary = tmp_path / "summary.csv"
    assert main(["collect", "--results", str(root), "--out", str(summary)]) == 0
    md, html = tmp_path / "out" / "claims.md", tmp_path / "out" / "claims.html"
    for out in (md, html):
        argv = ["claims", "--summary", str(summary), "--out", str(out), "--embedded"]
        assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "mib_ucd_beats_mib: holds" in printed and "ft_forgets: not evaluated" in printed
    text = md.read_text()
    assert "| `mib_ucd_beats_mib`: " in text and "| **holds** |" in text
    # d = 11, 12: mean 11.5, s 0.71; one-sided 95 %: 11.5 -/+ 6.3138 x 0.7071 / sqrt(2)
    row = (
        "| digits/5-5/disjoint | MiB+UCD - MiB, all | 63.0 ± 1.4 | 51.5 ± 0.7 | +11.5 | 0.7 | 2 "
        "| [+8.3, +14.7] | holds |"
    )
    assert row in text
    assert "| n | one-sided 95 % bounds of mean d [lower, upper] | Verdict |" in text
    assert "**not evaluated (missing: ft on any benchmark)**" in text
    assert "lower = mean(d) - q s / sqrt(n)" in text  # the rule, as written in claims.yaml
    head = text[: text.index("| Claim |")]  # the level and the rule before the overview
    assert "one-sided at the 95 % level" in head and "lower 95 % bound of mean(d)" in head
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "MiB+UCD - MiB, all" in page
    assert "<td>[+8.3, +14.7]</td>" in page and "one-sided at the 95 % level" in page
    assert '<b style="color:#1a7f37">holds</b>' in page
    assert main(["claims", "--summary", str(summary), "--out", "c.txt"]) == 2
    assert "unknown format '.txt'; use .md or .html" in capsys.readouterr().err


def test_a_note_opens_every_caption_page_and_figure(summary, tmp_path, monkeypatch):
    """`--note` (config `report.note`: the rehearsal's notice) is the caption's first words in
    LaTeX and HTML, the first line of the claims, and written under every figure."""
    import matplotlib.figure

    note = "REHEARSAL: numbers mean nothing."
    tex, html = tmp_path / "t.tex", tmp_path / "t.html"
    assert main(["table", "table9", "--summary", str(summary), "--note", note,
                 "--out", str(tex), str(html)]) == 0
    assert "\\caption{REHEARSAL: numbers mean nothing. Weight of" in tex.read_text()
    assert f"</b> {note} Weight of" in html.read_text()
    claims = tmp_path / "claims.md"
    assert main(["claims", "--embedded", "--summary", str(summary), "--note", note,
                 "--out", str(claims)]) == 0
    assert claims.read_text().startswith(f"**{note}**\n\n# ")
    texts = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, *a, **k: texts.append([t.get_text() for t in fig.texts]))
    assert main(["figure", "figure11", "--embedded", "--summary", str(summary), "--note", note,
                 "--out", str(tmp_path / "f.png")]) == 0
    assert main(["curves", "--summary", str(summary), "--benchmark", "digits/5-5/disjoint",
                 "--note", note, "--out", str(tmp_path / "c.png")]) == 0
    assert len(texts) == 4 and all(note in t for t in texts)
