"""Best-value selection, LaTeX/HTML rendering, well-formedness and (if pdflatex is
installed) compilation of every table."""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import numpy as np
import pytest

from ucd.data.tasks import get_task
from ucd.reporting.aggregate import collect
from ucd.reporting.grid import build_table, select_best, signed_difference, table_frame
from ucd.reporting.html import render_html
from ucd.reporting.latex import escape, render_latex, standalone_document
from ucd.reporting.tables import get_spec, load_tables

NAN = math.nan


def test_select_best_bold_and_underline_by_hand():
    values = np.array(
        [
            [50.0, 40.0, 1.0],
            [60.0, 40.0, 2.0],
            [55.0, NAN, 3.0],
            [52.0, 10.0, 4.0],
            [99.0, 99.0, 5.0],  # Joint: part None, never marked
        ]
    )
    bold, under = select_best(values, [1, 1, 2, 2, None], [1, 1, 1], [True, True, False])
    assert bold.tolist() == [
        [False, True, False],  # tie at 40.0: both bold
        [True, True, False],
        [False, False, False],
        [False, False, False],
        [False, False, False],
    ]
    # part 2: best 55.0 underlined in column 0; column 1 has a single value there: no underline;
    # part 1 holds the bold cells: no underline; column 2 is not markable (memory/time)
    assert under.tolist() == [
        [False, False, False],
        [False, False, False],
        [True, False, False],
        [False, False, False],
        [False, False, False],
    ]


def test_select_best_compares_printed_numbers_and_switches():
    values = np.array([[60.04], [60.01], [59.0], [58.0]])
    bold, _ = select_best(values, [1, 1, 2, 2], [1], [True])
    assert bold[:, 0].tolist() == [True, True, False, False]  # both print as 60.0
    bold, _ = select_best(values, [1, 1, 2, 2], [2], [True])
    assert bold[:, 0].tolist() == [True, False, False, False]
    bold, under = select_best(values, [1, 1, 2, 2], [1], [True], bold=False)
    assert not bold.any() and under[:, 0].tolist() == [True, True, True, False]
    bold, under = select_best(values, [1, 1, 2, 2], [1], [True], underline=False)
    assert not under.any()
    empty = np.full((2, 1), NAN)
    bold, under = select_best(empty, [1, 1], [1], [True])
    assert not bold.any() and not under.any()


def test_signed_difference():
    assert signed_difference(71.24, 71.8, 1) == "-0.6"
    assert signed_difference(71.8, 71.8, 1) == "+0.0"
    assert signed_difference(0.04, 0.0, 1) == "+0.0"
    assert signed_difference(42.125, 40.0, 2) == "+2.12"  # 42.12 printed (banker's: 42.12)


def _uniform(root, writer, benchmark, method, value, seed=42):
    """The last step of a run where every seen class has IoU `value`."""
    dataset, task, setting = benchmark.split("/")
    t = get_task(dataset, task)
    seen = t.classes_seen(t.n_steps - 1)
    writer(
        root,
        dataset,
        task,
        setting,
        method,
        t.n_steps - 1,
        {c: value for c in seen},
        seed=seed,
        peak_gpu_mem_mb=1536.0,
        train_time_s=90.0,
    )


@pytest.fixture
def table5_summary(tmp_path, metrics_writer):
    root = tmp_path / "results"
    values = {
        "ft": 0.2,
        "ilt": 0.4,
        "plop": 0.5,
        "plop_ucd": 0.55,
        "mib": 0.3,
        "mib_ucd": 0.35,
        "joint": 0.9,
    }
    for method, v in values.items():
        _uniform(root, metrics_writer, "cityscapes/13-6/overlapped", method, v)
    return collect(root)


def _row(tex: str, name: str) -> list[str]:
    line = next(ln for ln in tex.splitlines() if ln.startswith(name + " &"))
    return _cells(line)


def _cells(line: str) -> list[str]:
    """Split a tabular row on & at brace depth 0."""
    body = line.rstrip()
    body = body[:-2] if body.endswith(r"\\") else body
    cells, depth, cur = [], 0, ""
    for i, ch in enumerate(body):
        if ch in "{}" and (i == 0 or body[i - 1] != "\\"):
            depth += 1 if ch == "{" else -1
        if ch == "&" and depth == 0 and body[i - 1] != "\\":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return cells + [cur.strip()]


def test_table5_marks_and_missing_cells(table5_summary):
    tex = render_latex(build_table(get_spec("table5"), table5_summary, layout="paper"))
    # columns: 13-6 old, new, mIoU, then 13-1 (not run): dashes
    assert _row(tex, "PLOP+UCD") == ["PLOP+UCD", *[r"\textbf{55.0}"] * 3, "--", "--", "--"]
    assert _row(tex, "ILT")[1:4] == [r"\underline{40.0}"] * 3  # best of part FT/ILT
    assert _row(tex, "MiB+UCD")[1:4] == [r"\underline{35.0}"] * 3
    assert _row(tex, "MiB")[1:4] == ["30.0"] * 3
    assert _row(tex, "Joint")[1:4] == ["90.0"] * 3  # upper bound, never bold
    assert "1-13 & 14-19 & mIoU" in tex


@pytest.fixture
def seeded_summary(tmp_path, metrics_writer):
    """cityscapes 13-6: MiB at 60/62/64 % (3 seeds), MiB+UCD at 61 % (1 seed), PLOP at
    62.5/63.5 % (2 seeds: mean 63.0 above MiB's 62.0, bold by the mean)."""
    root = tmp_path / "results"
    runs = {"mib": (0.60, 0.62, 0.64), "mib_ucd": (0.61,), "plop": (0.625, 0.635)}
    for method, values in runs.items():
        for seed, v in enumerate(values, start=1):
            _uniform(root, metrics_writer, "cityscapes/13-6/overlapped", method, v, seed=seed)
    return collect(root)


def test_cells_over_seeds_print_mean_and_std(seeded_summary):
    data = build_table(get_spec("table5"), seeded_summary)
    tex = render_latex(data)
    assert _row(tex, "MiB")[1:4] == [r"\underline{62.0}{\scriptsize$\pm$2.0}"] * 3
    assert _row(tex, "MiB+UCD")[1:4] == ["61.0"] * 3  # one seed: the plain mean
    assert _row(tex, "PLOP")[1:4] == [r"\textbf{63.0}{\scriptsize$\pm$0.7}"] * 3
    html = render_html(data)
    assert '<td><u>62.0</u><span class="pm">±2.0</span></td>' in html
    assert "<td>61.0</td>" in html and "over 1 to 3 seeds" in html
    frame = table_frame(data)
    col = "cityscapes/13-6/overlapped/old"
    assert frame.loc["MiB", [col, f"{col}/std", f"{col}/n"]].tolist() == [62.0, 2.0, 3]
    assert frame.loc["MiB+UCD", f"{col}/n"] == 1 and math.isnan(frame.loc["MiB+UCD", f"{col}/std"])
    assert "FT" not in frame.index  # not run: left out of the run layout
    frame = table_frame(build_table(get_spec("table5"), seeded_summary, layout="paper"))
    assert frame.loc["FT", f"{col}/n"] == 0 and math.isnan(frame.loc["FT", col])


def test_compare_variant_shows_paper_and_difference(table5_summary):
    spec = get_spec("table5")
    tex = render_latex(build_table(spec, table5_summary, compare=True, layout="paper"))
    cells = _row(tex, "MiB+UCD")
    # ours 35.0 against the paper's 53.0 / 18.6 / 42.1; 13-1 not run: paper only
    assert r"\underline{35.0}" in cells[1] and r"(53.0, $-18.0$)" in cells[1]
    assert r"(18.6, $+16.4$)" in cells[2]
    assert cells[4].startswith(r"\begin{tabular}") and "--" in cells[4] and "(52.2)" in cells[4]
    html = render_html(build_table(spec, table5_summary, compare=True))
    assert '<u>35.0</u> <span class="ref">(53.0, -18.0)</span>' in html
    assert "<b>55.0</b>" in html
    assert "(52.2)" not in html  # the run layout: 13-1 was not run, left out with its numbers
    cells = _row(render_latex(build_table(spec, table5_summary, compare=True)), "MiB+UCD")
    assert len(cells) == 4 and r"(42.1, $-7.1$)" in cells[3]


def _check_well_formed(tex: str, n_columns: int) -> None:
    unescaped = re.sub(r"\\[{}]", "", tex)
    assert unescaped.count("{") == unescaped.count("}")
    assert tex.count(r"\begin{") == tex.count(r"\end{")
    body = tex[tex.index(r"\toprule") : tex.index(r"\bottomrule")]
    for line in body.splitlines():
        if not line.rstrip().endswith(r"\\"):
            assert line.startswith((r"\toprule", r"\midrule", r"\cmidrule")), line
            continue
        width = 0
        for cell in _cells(line):
            m = re.match(r"\\multicolumn\{(\d+)\}", cell)
            width += int(m.group(1)) if m else 1
        assert width == n_columns, line


@pytest.mark.parametrize("table_id", [t for t in load_tables() if t.startswith("table")])
@pytest.mark.parametrize("compare", [False, True])
@pytest.mark.parametrize("layout", ["run", "paper"])
def test_every_table_is_well_formed(table_id, compare, layout, table5_summary):
    data = build_table(get_spec(table_id), table5_summary, compare=compare, layout=layout)
    spec = data.spec  # the run layout keeps table5's 13-6 block only
    n_columns = 1 + len(spec.lead_columns) + sum(len(b.columns) for b in spec.blocks)
    _check_well_formed(render_latex(data), n_columns)
    assert render_html(data).count("<tr") == data.header_levels + len(spec.rows)


def test_empty_summary_is_all_dashes():
    data = build_table(get_spec("table9"), None)
    tex = render_latex(data)
    assert _row(tex, "0.01")[1:] == ["--"] * 6  # lambda_ucd = 0.01: MiB+UCD
    assert r"\lambda_{ucd}" in tex and r"\bottomrule" in tex


def test_escape():
    assert escape("50% & a_b #1 {x} †") == r"50\% \& a\_b \#1 \{x\} \dag{}"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_every_table_compiles(tmp_path, table5_summary, seeded_summary):
    tables = [render_latex(build_table(get_spec("table5"), seeded_summary, compare=True))]
    for table_id in [t for t in load_tables() if t.startswith("table")]:
        for compare in (False, True):
            tables.append(
                render_latex(build_table(get_spec(table_id), table5_summary, compare=compare))
            )
    for table_id in ("table1", "table7"):
        tables.append(render_latex(build_table(get_spec(table_id, embedded=True), None)))
    (tmp_path / "all.tex").write_text(standalone_document(*tables))
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "all.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "all.pdf").stat().st_size > 1000


@pytest.fixture
def default_grid_summary(tmp_path, metrics_writer):
    """The default run's shape on the embedded Table 1: 7 methods on digits 5-5, both
    settings; and RECALL on 5-1 disjoint only."""
    root = tmp_path / "results"
    methods = ("ft", "joint", "mib", "plop", "ucd_official", "mib_ucd", "plop_ucd")
    for i, method in enumerate(methods):
        for setting in ("disjoint", "overlapped"):
            _uniform(root, metrics_writer, f"digits/5-5/{setting}", method, 0.1 + 0.1 * i)
    _uniform(root, metrics_writer, "digits/5-1/disjoint", "recall", 0.3)
    return collect(root)


def test_the_run_layout_prints_only_what_was_run(default_grid_summary):
    spec = get_spec("table1", embedded=True)  # 17 rows, 6 benchmarks x 3 columns
    data = build_table(spec, default_grid_summary)
    names = ["FT", "RECALL‡", "UCD", "MiB", "MiB+UCD", "PLOP*", "PLOP+UCD", "Joint"]
    assert [r.name for r in data.spec.rows] == names  # in the paper's order
    benches = ["digits/5-5/disjoint", "digits/5-5/overlapped", "digits/5-1/disjoint"]
    assert [b.benchmark for b in data.spec.blocks] == benches
    tex = render_latex(data)
    _check_well_formed(tex, 1 + 9)
    assert r" & \multicolumn{6}{c}{5-5} & \multicolumn{3}{c}{5-1} \\" in tex
    assert "8-2" not in tex.split(r"\toprule")[1]  # only in the caption
    assert _row(tex, "FT")[1:] == ["10.0"] * 6 + ["--"] * 3  # a kept block, FT not run there
    assert _row(tex, r"RECALL$^\ddagger$")[1:] == ["--"] * 6 + [r"\textbf{30.0}"] * 3
    assert r"\textbf{70.0}" in _row(tex, "PLOP+UCD")[1]  # the best of the rows kept
    assert data.spec.caption.endswith(
        " Not run, left out (the paper layout shows them): PI, EWC, RW, LwF, LwF-MC, ILT, ILT†, "
        "SDR, MiB+SDR; digits 8-2 disjoint, digits 8-2 overlapped, digits 5-1 overlapped."
    )
    html = render_html(data)
    assert html.count("<tr") == data.header_levels + len(names)
    assert "<td>PI</td>" not in html and "<td>FT</td>" in html


def test_the_paper_layout_prints_every_row_and_column(default_grid_summary):
    spec = get_spec("table1", embedded=True)
    data = build_table(spec, default_grid_summary, layout="paper")
    assert len(data.spec.rows) == 17 and len(data.columns) == 18
    assert "left out" not in data.spec.caption
    tex = render_latex(data)
    _check_well_formed(tex, 1 + 18)
    assert _row(tex, "PI")[1:] == ["--"] * 18
    assert render_html(data).count("<tr") == data.header_levels + 17


def test_the_run_layout_of_a_table_nothing_ran_for():
    data = build_table(get_spec("table1", embedded=True), None)
    assert len(data.spec.rows) == 17 and len(data.columns) == 18
    assert "No run of this table exists yet" in data.spec.caption
    with pytest.raises(ValueError, match="unknown table layout 'wide'; valid: run, paper"):
        build_table(get_spec("table1"), None, layout="wide")
