"""workflow/report/*.rst render as `snakemake --report` renders them (Jinja2, then
docutils), for every table and figure caption, without warnings."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from ucd.reporting.tables import available, get_spec

jinja2 = pytest.importorskip("jinja2")
docutils_core = pytest.importorskip("docutils.core")

REPORT = Path(__file__).parents[2] / "workflow" / "report"


def render(name: str, snakemake: NS) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    text = env.from_string((REPORT / name).read_text(encoding="utf-8")).render(snakemake=snakemake)
    settings = {"report_level": 2, "halt_level": 2}  # any docutils warning raises
    return docutils_core.publish_parts(text, writer="html", settings_overrides=settings)["body"]


@pytest.mark.parametrize("embedded", [False, True])
def test_table_and_figure_captions(embedded):
    for item in available(embedded=embedded):
        caption = get_spec(item, embedded=embedded).caption
        if item.startswith("table"):
            for rule in ("table", "table_compare"):
                sm = NS(wildcards=NS(table=item), params=NS(caption=caption), rule=rule)
                html = render("table.rst", sm)
                assert html.startswith(f"<p><strong>{item.capitalize()}.</strong>")
                assert ("published in the paper" in html) == (rule == "table_compare")
        else:
            sm = NS(wildcards=NS(figure=item), params=NS(caption=caption), rule="figure")
            assert caption.split()[0] in render("figure.rst", sm)


def test_benchmark_captions_and_workflow_description():
    w = NS(wildcards=NS(dataset="voc", task="15-1", setting="disjoint"))
    assert "voc 15-1" in render("curves.rst", w)
    assert "Figs. 6-9" in render("qualitative.rst", w)
    assert "does not hold" in render("claims.rst", NS())
    assert "digits" in render("workflow.rst", NS(config={"report": {"embedded": True}}))
    assert "digits" not in render("workflow.rst", NS(config={"report": {}}))
