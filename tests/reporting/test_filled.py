"""missing_cells: the cells the paper fills that a set of results leaves empty."""

from __future__ import annotations

from ucd.reporting.aggregate import collect
from ucd.reporting.filled import missing_cells

FT = ("cityscapes", "13-6", "overlapped", "ft")


def _summary(root, metrics_writer, iou):
    metrics_writer(root, *FT, 1, iou)
    return collect(root)


def test_a_run_with_every_class_fills_its_cells(tmp_path, metrics_writer):
    df = _summary(tmp_path / "r", metrics_writer, dict.fromkeys(range(20), 0.5))
    assert missing_cells(df, ["table5"], runs={FT}) == []
    everything = missing_cells(df, ["table5"])  # the other rows and 13-1 are not run
    assert "table5/cityscapes/13-1/overlapped/ft/old" in everything
    assert "table5/cityscapes/13-6/overlapped/mib/all" in everything
    assert not any(c.startswith("table5/cityscapes/13-6/overlapped/ft/") for c in everything)


def test_a_column_without_any_scored_class_is_missing(tmp_path, metrics_writer):
    iou = {c: (None if c >= 14 else 0.5) for c in range(20)}  # no ground truth of 14-19
    df = _summary(tmp_path / "r", metrics_writer, iou)
    assert missing_cells(df, ["table5"], runs={FT}) == ["table5/cityscapes/13-6/overlapped/ft/new"]


def test_figure_points_and_skipped_columns(tmp_path, metrics_writer):
    iou = dict.fromkeys(range(21), 0.5)
    metrics_writer(tmp_path / "r", "voc", "15-5", "disjoint", "mib_ucd", 1, iou)
    df = collect(tmp_path / "r")
    runs = {("voc", "15-5", "disjoint", m) for m in ("mib_ucd", "mib_ucd-bs2")}
    assert missing_cells(df, ["figure11"], runs=runs) == [
        "figure11/voc/15-5/disjoint/mib_ucd-bs2/all"]
    table7 = {("voc", "15-5", "disjoint", "mib_ucd")}
    assert missing_cells(df, ["table7"], runs=table7) == [
        "table7/voc/15-5/disjoint/mib_ucd/memory"]  # no GPU memory recorded
    assert missing_cells(df, ["table7"], runs=table7, skip_columns=("memory",)) == []
