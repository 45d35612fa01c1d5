"""The fidelity report on hand-built results: a summary frame whose Kendall tau-b, retentions
and bands against the paper's Table 1 were computed by hand; fidelity.yaml's validation; the
Markdown, HTML and the command line."""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
import yaml

from ucd.data.tasks import get_task
from ucd.reporting.cli import main
from ucd.reporting.fidelity import (
    CALIBRATION,
    FIDELITY_FILE,
    HELD_OUT,
    band_agreement,
    evaluate_fidelity,
    load_fidelity,
    paper_benchmark,
    parse_fidelity,
)
from ucd.reporting.fidelity_report import document, render_html, render_markdown


def runs(benchmark: str, method: str, last: dict[int, float], step0: float = 80.0) -> list[dict]:
    """Summary rows of one method: per seed, step 0 with every old class at `step0` % and the
    last step with every old class at last[seed] % (new classes 50 %)."""
    dataset, task, setting = benchmark.split("/")
    t = get_task(dataset, task)
    old = [c for c in t.steps[0] if c != 0]
    rows = []
    for seed, value in last.items():
        ident = {"dataset": dataset, "task": task, "setting": setting, "method": method,
                 "seed": seed}
        if method == "joint":  # one step, every class
            every = t.classes_seen(t.n_steps - 1)
            rows.append({**ident, "step": 0, "n_classes_seen": len(every),
                         **{f"iou_{c}": value / 100 for c in every}})
            continue
        rows.append({**ident, "step": 0, "n_classes_seen": len(t.steps[0]),
                     **{f"iou_{c}": step0 / 100 for c in t.steps[0]}})
        every = t.classes_seen(t.n_steps - 1)
        iou = {f"iou_{c}": (value if c in old else 50.0) / 100 for c in every}
        rows.append({**ident, "step": t.n_steps - 1, "n_classes_seen": len(every), **iou})
    return rows


D55, O55, D82 = "digits/5-5/disjoint", "digits/5-5/overlapped", "digits/8-2/disjoint"


@pytest.fixture
def summary() -> pd.DataFrame:
    """Digits 5-5 disjoint (VOC 15-5 disjoint in the paper's Table 1: FT 1.1, RW 17.9,
    EWC 26.7, LwF 58.4, LwF-MC 67.2; Joint 79.1), step 0 at 80 % for every method:

        ours (mean of 2 seeds)   FT 4   RW 20   EWC 16   LwF 60   LwF-MC 30
        retention                5 %    25 %    20 %     75 %     37.5 %
        band                     forgets partial partial keeps    partial
        the paper's retention    1.4 %  22.6 %  33.8 %   73.8 %   85.0 %
        the paper's band         forgets partial partial keeps    keeps

    pairs: RW-EWC and LwF-LwF-MC discordant, 8 concordant -> tau-b = (8 - 2) / 10 = 0.6;
    bands agree for 4 of 5.
    Digits 5-5 overlapped (VOC 15-5 overlapped: FT 2.1, RW 16.6, EWC 24.3, LwF-MC 58.1,
    LwF 58.9): ours FT 5.02, RW 4.98 (both print 5.0: a tie), EWC 20, LwF 40, LwF-MC 30 ->
    9 concordant, 1 tied in ours -> tau-b = 9 / sqrt(9 x 10) = 0.9487 (unrounded, FT above
    RW would be discordant: 0.7).
    Digits 8-2 disjoint (VOC 19-1 disjoint: FT 5.8, UCD 73.4, Joint 77.4): FT 2, UCD 50:
    tau-b 1 over 2 held-out methods; UCD retention 62.5 % (keeps) against 94.8 % (keeps)."""
    disjoint = {"ft": 4, "rw": 20, "ewc": 16, "lwf": 60, "lwf_mc": 30}
    rows = []
    for method, v in disjoint.items():
        rows += runs(D55, method, {1: v - 1, 2: v + 1})
    rows += runs(D55, "joint", {1: 70, 2: 70})
    rows += runs(D55, "mib-bs4", {1: 50, 2: 50})  # a variant: no row of Table 1
    overlapped = {"ft": 5.02, "rw": 4.98, "ewc": 20, "lwf": 40, "lwf_mc": 30}
    for method, v in overlapped.items():
        rows += runs(O55, method, {1: v, 2: v})
    rows += runs(D82, "ft", {1: 2, 2: 2}) + runs(D82, "ucd_official", {1: 50, 2: 50})
    rows += runs("cityscapes/13-6/disjoint", "ft", {1: 10})  # no such table in the paper
    return pd.DataFrame(rows)


def test_known_tau_retentions_and_bands(summary):
    results, unmatched = evaluate_fidelity(summary)
    assert unmatched == ["cityscapes/13-6/disjoint"]
    by = {r.ours: r for r in results}
    assert list(by) == [D55, O55, D82]
    d = by[D55]
    assert (d.paper, d.table, d.paper_step0) == ("voc/15-5/disjoint", "table1", 79.1)
    assert (d.ranking.tau, d.ranking.n) == (pytest.approx(0.6), 5)
    assert d.calibration_ranking.tau == pytest.approx(0.6)  # all five are calibration rows
    rows = {r.method: r for r in d.rows}
    assert list(rows) == ["ft", "ewc", "rw", "lwf", "lwf_mc"]  # Table 1's order
    assert rows["ewc"].ours.mean == pytest.approx(16.0) and rows["ewc"].ours.n == 2
    assert rows["ewc"].ours_step0 == pytest.approx(80.0)
    retention = {m: r.ours_retention for m, r in rows.items()}
    assert retention == pytest.approx(
        {"ft": 0.05, "rw": 0.25, "ewc": 0.20, "lwf": 0.75, "lwf_mc": 0.375}
    )
    paper = {m: r.paper_retention for m, r in rows.items()}
    assert paper == pytest.approx({"ft": 1.1 / 79.1, "rw": 17.9 / 79.1, "ewc": 26.7 / 79.1,
                                   "lwf": 58.4 / 79.1, "lwf_mc": 67.2 / 79.1})
    assert [(r.ours_band, r.paper_band, r.agree) for r in rows.values()] == [
        ("forgets", "forgets", True),
        ("partial", "partial", True),
        ("partial", "partial", True),
        ("keeps", "keeps", True),
        ("partial", "keeps", False),
    ]
    assert {r.role for r in d.rows} == {CALIBRATION}
    assert d.not_in_paper == ("mib-bs4",) and d.excluded == ("joint",)
    assert "PI" in d.not_run and "MiB+UCD" in d.not_run and "FT" not in d.not_run


def test_ties_as_printed_and_held_out_rows(summary):
    results, _ = evaluate_fidelity(summary)
    by = {r.ours: r for r in results}
    assert by[O55].ranking.tau == pytest.approx(9 / math.sqrt(90))
    h = by[D82]
    assert (h.paper, h.paper_step0) == ("voc/19-1/disjoint", 77.4)
    assert [(r.method, r.role) for r in h.rows] == [("ft", HELD_OUT), ("ucd_official", HELD_OUT)]
    assert h.ranking.tau == pytest.approx(1.0) and h.calibration_ranking.n == 0
    ucd = h.rows[1]
    assert (ucd.ours_retention, ucd.paper_retention) == pytest.approx((0.625, 73.4 / 77.4))
    assert (ucd.ours_band, ucd.paper_band, ucd.agree) == ("keeps", "keeps", True)
    # calibration: disjoint 4 of 5, overlapped: FT forgets/forgets, RW 6 % forgets against
    # 21 % partial, EWC 25 %/31 % partial, LwF 50 % (partial: not above 50 %) against 74 %,
    # LwF-MC 37.5 % against 73 % -> 2 of 5
    assert band_agreement(results, CALIBRATION) == {
        "disjoint": (4, 5), "overlapped": (2, 5), "both": (6, 10)}
    assert band_agreement(results, HELD_OUT) == {"disjoint": (2, 2), "both": (2, 2)}


def test_the_markdown_and_html_report(summary, tmp_path):
    results, unmatched = evaluate_fidelity(summary)
    items = document(results, unmatched, load_fidelity(), summary, "summary.csv")
    md = render_markdown(items)
    assert "| digits/5-5/disjoint | voc/15-5/disjoint | Table 1 | +0.60 (5) | +0.60 (5) | 4 of 5 " \
           "| - |" in md
    assert "| LwF-MC | calibration | 30.0 ± 1.4 | 80.0 | 37.5 % | partial | 67.2 | 85.0 % " \
           "| keeps | no |" in md
    assert "| UCD | held-out | 50.0 ± 0.0 | 80.0 | 62.5 % | keeps | 73.4 | 94.8 % | keeps | yes |" \
        in md
    assert "Calibration set: 6 of 10 rows in the paper's band (disjoint 4 of 5, overlapped 2 " \
           "of 5)." in md
    assert "The paper's step-0 reference: 79.1 (Joint, old classes, Table 1)" in md
    assert "Joint's old-class mIoU of the same table" in md  # the source, from fidelity.yaml
    assert "Run here, no number in the paper's Table 1: mib-bs4." in md
    assert "Not ranked: Joint (the upper bound" in md
    assert "No paper counterpart with published numbers: cityscapes/13-6/disjoint." in md
    page = render_html(items)
    assert page.startswith("<!DOCTYPE html>") and '<td class="no">no</td>' in page
    assert "<td>37.5 %</td>" in page and "Calibration set: 6 of 10" in page


def test_the_command_line(summary, tmp_path, capsys):
    path = tmp_path / "summary.csv"
    summary.to_csv(path, index=False)
    md, page = tmp_path / "out" / "fidelity.md", tmp_path / "out" / "fidelity.html"
    assert main(["fidelity", "--summary", str(path), "--out", str(md), str(page)]) == 0
    printed = capsys.readouterr().out
    assert "digits/5-5/disjoint (the paper's voc/15-5/disjoint): tau-b +0.60 (5)" in printed
    assert "Calibration set: 6 of 10 rows" in printed
    assert md.read_text().startswith("# Fidelity of our runs to the paper")
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert main(["fidelity", "--summary", str(path), "--out", str(tmp_path / "f.txt")]) == 2
    assert "unknown format '.txt'; use .md or .html" in capsys.readouterr().err


def test_paper_benchmarks_of_the_embedded_tasks():
    assert paper_benchmark("digits", "5-5", "disjoint") == "voc/15-5/disjoint"
    assert paper_benchmark("digits", "6-4", "overlapped") == "voc/10-10/overlapped"
    assert paper_benchmark("voc", "15-1", "disjoint") == "voc/15-1/disjoint"


def test_fidelity_yaml_says_what_the_issue_asks():
    spec = load_fidelity()
    assert spec.calibration_benchmarks == ("voc/15-5/disjoint", "voc/15-5/overlapped")
    assert set(spec.calibration_methods) == {
        "ft", "pi", "ewc", "rw", "lwf", "lwf_mc", "ilt", "sdr", "recall", "mib", "mib_sdr", "plop"}
    assert not {"ucd", "ucd_official", "mib_ucd", "plop_ucd"} & set(spec.calibration_methods)
    assert (spec.forgets, spec.keeps, spec.metric) == (0.15, 0.5, "old")
    assert [spec.band(r) for r in (0.149, 0.15, 0.5, 0.501, math.nan)] == [
        "forgets", "partial", "partial", "keeps", "-"]
    assert spec.paper_step0_method == "joint" and "joint" in spec.exclude


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "mean"}, "metric: 'mean' is not one of old, new, all"),
        ({"bands": {"forgets": 0.6, "keeps": 0.5}}, "need 0 < forgets < keeps < 1"),
        ({"calibration": {"benchmarks": ["voc/15-5"], "methods": []}}, "dataset/task/setting"),
        ({"calibration": {"benchmarks": [], "methods": ["nosuch"]}},
         "calibration.methods: unknown method.s. nosuch"),
        ({"step0": {"ours": "x", "paper": {"method": "joint"}}}, "step0.paper.source: missing"),
    ],
)
def test_a_bad_fidelity_yaml_is_rejected(change, message):
    data = copy.deepcopy(yaml.safe_load(FIDELITY_FILE.read_text()))
    data.update(change)
    with pytest.raises(ValueError, match=message):
        parse_fidelity(data)


def test_a_summary_without_runs(tmp_path, capsys):
    path = tmp_path / "summary.csv"
    path.write_text("dataset,task,setting,method,seed,step,n_classes_seen\n")
    out = tmp_path / "fidelity.md"
    assert main(["fidelity", "--summary", str(path), "--out", str(out)]) == 0
    assert "Calibration set: none was run" in capsys.readouterr().out
    assert "No benchmark of the summary stands for a paper benchmark." in out.read_text()
