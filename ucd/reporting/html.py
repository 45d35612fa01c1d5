"""HTML rendering of a TableData (self-contained page), for `snakemake --report`
and for reading tables without LaTeX; same content (mean, small ±std over seeds) and
marks as the LaTeX."""

from __future__ import annotations

import html
import math

from ucd.reporting.grid import (
    Column,
    TableData,
    format_number,
    signed_difference,
    spread_text,
)

STYLE = """
body { font-family: sans-serif; font-size: 13px; }
table { border-collapse: collapse; }
caption { caption-side: top; text-align: left; max-width: 70em; padding-bottom: 6px; }
th, td { padding: 2px 6px; text-align: center; white-space: nowrap; }
td:first-child, th:first-child { text-align: left; }
thead tr:first-child th { border-top: 2px solid black; }
thead tr:last-child th { border-bottom: 1px solid black; }
th.group { border-bottom: 1px solid #888; }
tr.part td { border-top: 1px solid black; }
tbody tr:last-child td { border-bottom: 2px solid black; }
.ref { color: #666; font-size: 85%; }
.pm { font-size: 75%; }
"""


def _header_rows(columns: list[Column], first: list[str]) -> list[str]:
    depth = len(columns[0].headers)
    rows = []
    for level in range(depth):
        cells = [f"<th>{html.escape(first[level])}</th>"]
        j = 0
        while j < len(columns):
            key = columns[j].headers[: level + 1]
            k = j
            while k + 1 < len(columns) and columns[k + 1].headers[: level + 1] == key:
                k += 1
            span = k - j + 1
            group = ' class="group"' if key[-1] and level < depth - 1 else ""
            cells.append(f'<th colspan="{span}"{group}>{html.escape(key[-1])}</th>')
            j = k + 1
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return rows


def _cell(data: TableData, i: int, j: int) -> str:
    col = data.columns[j]
    ours = data.values[i, j]
    text = format_number(ours, col.decimals)
    if data.bold[i, j]:
        text = f"<b>{text}</b>"
    elif data.underline[i, j]:
        text = f"<u>{text}</u>"
    spread = spread_text(data, i, j)
    if spread is not None:
        text += f'<span class="pm">±{spread}</span>'
    if data.reference is not None and data.reference[i][j].value is not None:
        ref = data.reference[i][j].value
        paper = format_number(ref, col.decimals)
        if math.isnan(ours):
            text += f' <span class="ref">({paper})</span>'
        else:
            diff = signed_difference(ours, ref, col.decimals)
            text += f' <span class="ref">({paper}, {diff})</span>'
    return f"<td>{text}</td>"


def render_html(data: TableData, *, title: str | None = None) -> str:
    """A standalone HTML page holding the table and its caption."""
    spec = data.spec
    columns = data.lead_columns + data.columns
    depth = len(columns[0].headers)
    first = [""] * (depth - 1) + [spec.row_header]
    body = []
    prev = object()
    for i, row in enumerate(spec.rows):
        cls = ' class="part"' if i > 0 and row.part != prev else ""
        prev = row.part
        marks = "".join(f"<td>{'✓' if m else ''}</td>" for m in row.lead)
        values = "".join(_cell(data, i, j) for j in range(len(data.columns)))
        body.append(f"<tr{cls}><td>{html.escape(row.name)}</td>{marks}{values}</tr>")
    caption = html.escape(spec.caption)
    if data.reference is not None:
        caption += " In parentheses: the paper's number and our difference to it."
    if (data.n >= 2).any():
        lo, hi = int(data.n[data.n > 0].min()), int(data.n.max())
        seeds = str(hi) if lo == hi else f"{lo} to {hi}"
        caption += f" Mean ± sample standard deviation over {seeds} seeds."
    name = html.escape(title or spec.id)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            f'<html><head><meta charset="utf-8"><title>{name}</title>',
            f"<style>{STYLE}</style></head><body>",
            "<table>",
            f"<caption><b>{name}.</b> {caption}</caption>",
            "<thead>",
            *_header_rows(columns, first),
            "</thead><tbody>",
            *body,
            "</tbody></table></body></html>",
            "",
        ]
    )
