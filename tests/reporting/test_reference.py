"""reference.yaml against the paper's tables (tests/reporting/data): every cell and its marks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ucd.reporting.reference import RefCell, load_reference, parse_cell, reference_value
from ucd.reporting.tables import TableSpec, load_tables

PAPER = Path(__file__).with_name("data") / "paper_tables.md"  # Tables 1-9, verbatim


def paper_table(n: int) -> list[tuple[str, list[RefCell]]]:
    """Data rows (first field, cells) of TABLE n as printed in the paper."""
    lines = PAPER.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"TABLE {n}:"))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith(("TABLE ", "#", "Fig")):
            break
        fields = line.split("\t")
        cells = []
        for f in fields[1:]:
            f = f.strip()
            m = re.fullmatch(r"<(b|u)>([0-9.]+)</\1>", f)
            if m:
                cells.append(RefCell(float(m.group(2)), m.group(1) == "b", m.group(1) == "u"))
            elif re.fullmatch(r"[0-9.]+", f):
                cells.append(RefCell(float(f)))
            elif f == "-":
                cells.append(RefCell(None))
            else:
                cells.append(None)  # header text or a check mark
        if n == 7:
            cells = cells[-3:]  # the check marks are not numbers
        if len(fields) > 3 and cells and all(c is not None for c in cells):
            rows.append((fields[0].strip(), cells))
        elif rows and len(fields) < 3:
            break
    return rows


@pytest.mark.parametrize("n", range(1, 10))
def test_every_cell_matches_the_paper(n):
    spec = load_tables()[f"table{n}"]
    assert isinstance(spec, TableSpec)
    printed = paper_table(n)
    ours = load_reference()[f"table{n}"]
    assert len(printed) == len(spec.rows) == len(ours)
    keys = [(b.benchmark, c) for b in spec.blocks for c in b.columns]
    for (name, cells), row in zip(printed, spec.rows):
        assert len(cells) == len(keys), name
        transcribed = [ours[row.method][k] for k in keys]
        assert transcribed == cells, f"table{n} row {name!r} ({row.method})"


def test_rows_are_in_the_papers_order():
    # the printed first column, normalised, against our display names
    def norm(s: str) -> str:
        s = re.sub(r"\[[0-9]+\]|[*†‡ ]", "", s).lower()
        return s.replace("ewg", "ewc")  # the paper's typo

    for n in (1, 2, 3, 5):
        names = [norm(name) for name, _ in paper_table(n)]
        assert names == [norm(r.name) for r in load_tables()[f"table{n}"].rows]


def test_sample_cells_by_hand():
    # three or more cells per table, read off the paper by eye
    samples = {
        ("table1", "mib", "voc/15-5/disjoint", "all"): RefCell(64.7),
        ("table1", "recall", "voc/19-1/disjoint", "new"): RefCell(50.1, bold=True),
        ("table1", "sdr", "voc/15-5/disjoint", "old"): RefCell(73.5, underline=True),
        ("table2", "mib_ucd", "voc/10-1/overlapped", "all"): RefCell(31.1, underline=True),
        ("table2", "ilt", "voc/10-10/disjoint", "old"): RefCell(67.7, bold=True),
        ("table2", "joint", "voc/10-1/disjoint", "new"): RefCell(76.0),
        ("table3", "sdr", "ade/100-10/disjoint", "step3"): RefCell(None),
        ("table3", "mib_ucd", "ade/100-50/disjoint", "all"): RefCell(36.4, bold=True),
        ("table3", "joint", "ade/100-10/disjoint", "step5"): RefCell(17.3),
        ("table4", "plop", "ade/50-50/overlapped", "old"): RefCell(48.83, bold=True),
        ("table4", "ilt", "ade/100-50/overlapped", "new"): RefCell(14.40),
        ("table4", "mib", "ade/100-10/overlapped", "all"): RefCell(29.24),
        ("table5", "ft", "cityscapes/13-6/overlapped", "new"): RefCell(33.4, bold=True),
        ("table5", "mib_ucd", "cityscapes/13-1/overlapped", "all"): RefCell(43.1, bold=True),
        ("table5", "ilt", "cityscapes/13-1/overlapped", "old"): RefCell(4.2),
        ("table6", "mib", "ade/100-50/disjoint", "all"): RefCell(34.0),
        ("table6", "mib_cd", "voc/15-5/disjoint", "old"): RefCell(72.6),
        ("table6", "mib_pixcon", "voc/15-5/disjoint", "new"): RefCell(43.8),
        ("table7", "mib_ucd_bg", "voc/15-5/disjoint", "memory"): RefCell(63.4),
        ("table7", "mib_ucd_oldnew", "voc/15-5/disjoint", "time"): RefCell(108),
        ("table7", "mib_ucd", "voc/15-5/disjoint", "all"): RefCell(66.3),
        ("table8", "mib_ucd-tau1", "ade/100-50/disjoint", "old"): RefCell(37.0),
        ("table8", "mib_ucd", "ade/100-50/disjoint", "new"): RefCell(29.4, bold=True),
        ("table8", "mib_ucd-tau0.01", "voc/15-5/disjoint", "all"): RefCell(65.5),
        ("table9", "mib_ucd-lam0", "voc/19-1/disjoint", "new"): RefCell(15.2),
        ("table9", "mib_ucd-lam0.0001", "voc/15-5/disjoint", "old"): RefCell(68.4),
        ("table9", "mib_ucd", "voc/19-1/disjoint", "all"): RefCell(71.7, bold=True),
    }
    for key, cell in samples.items():
        assert reference_value(*key) == cell, key


def test_parse_cell():
    assert parse_cell(73.4) == RefCell(73.4)
    assert parse_cell("73.4u") == RefCell(73.4, underline=True)
    assert parse_cell("50.1b") == RefCell(50.1, bold=True)
    assert parse_cell("-") == RefCell(None)
    with pytest.raises(ValueError, match="reference cell 'x1': expected a number"):
        parse_cell("x1")
    assert reference_value("table1", "nosuch", "voc/15-5/disjoint", "all") == RefCell(None)


def test_reference_file_errors(tmp_path):
    bad = tmp_path / "ref.yaml"
    bad.write_text("table9:\n  mib_ucd: [1.0, 2.0]\n")
    with pytest.raises(ValueError, match="table9/mib_ucd has 2 values, the table has 6 columns"):
        load_reference(bad)
    bad = tmp_path / "ref2.yaml"
    bad.write_text("table9:\n  nosuch: [1, 2, 3, 4, 5, 6]\n")
    with pytest.raises(ValueError, match="table9 has no row 'nosuch'"):
        load_reference(bad)
    bad = tmp_path / "ref3.yaml"
    bad.write_text("figure10:\n  mib_ucd: [1]\n")
    with pytest.raises(ValueError, match="'figure10' is not a table"):
        load_reference(bad)
