"""Tables say where a replaying method's images came from (metrics.json's replay_source)."""

from __future__ import annotations

from ucd.reporting.aggregate import collect
from ucd.reporting.grid import build_table
from ucd.reporting.latex import render_latex
from ucd.reporting.tables import get_spec

IOU = {0: 0.9, 1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5, 5: 0.5}
IOU1 = {**IOU, 6: 0.4, 7: 0.4, 8: 0.4, 9: 0.4, 10: 0.4}


def test_the_caption_names_the_replay_source_of_each_replaying_row(tmp_path, metrics_writer):
    for method, source in (("recall", "folder /data/web"), ("mib", None)):
        for step, iou in ((0, IOU), (1, IOU1)):
            metrics_writer(tmp_path, "digits", "5-5", "disjoint", method, step, iou,
                           replay_source=source)
    summary = collect(tmp_path)
    assert summary.loc[summary["method"] == "mib", "replay_source"].isna().all()
    spec = get_spec("table1", embedded=True)
    data = build_table(spec, summary, layout="paper")  # the caption of the paper layout
    assert data.spec.caption == spec.caption + " Replayed images: RECALL‡ from folder /data/web."
    assert "Replayed images: RECALL$^\\ddagger$" not in render_latex(data)  # plain name, escaped
    assert "from folder /data/web." in render_latex(data)
    other = build_table(get_spec("table8", embedded=True), summary, layout="paper")  # no RECALL
    assert other.spec.caption == get_spec("table8", embedded=True).caption
    assert build_table(spec, None, layout="paper").spec.caption == spec.caption
    assert build_table(spec, summary).spec.caption.endswith(" from folder /data/web.")
