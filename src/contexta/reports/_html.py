"""A report document as one self-contained HTML page: inline CSS and inline SVG charts, nothing to
fetch, so the file opens the same offline, attached to a ticket or years later.

Every piece of captured text is escaped as it is written, so a run name or a sample's text can never
become markup; table cells are formatted like the Markdown rendering so the two always agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from contexta.reports._cells import Cell, text_cell
from contexta.reports._escaping import html_text
from contexta.reports._sections import ReportChart, ReportSection, ReportTable
from contexta.reports._svg import render_line_chart

__all__ = ["render_html", "render_html_fragment"]

_NUMERIC = ' class="num"'
_LONG_CELL = 40  # characters; a longer cell wraps within its column

# No comment in here may hold two slashes in a row: the page promises no `//` anywhere.
_STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body {
  margin: 0; background: #f3f4f6; color: #1f2328;
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 1100px; margin: 0 auto; padding: 32px 24px 48px; }
h1 { font-size: 1.8rem; line-height: 1.25; margin: 0 0 24px; overflow-wrap: anywhere; }
section {
  background: #fff; border: 1px solid #d8dce2; border-radius: 8px;
  padding: 20px 24px 24px; margin: 0 0 20px;
}
h2 { font-size: 1.25rem; line-height: 1.3; margin: 0 0 12px; overflow-wrap: anywhere; }
p { margin: 0 0 12px; max-width: 75ch; white-space: pre-line; overflow-wrap: anywhere; }
.table-wrap {
  display: inline-block; max-width: 100%; overflow-x: auto; vertical-align: top;
  margin: 4px 0 8px; border: 1px solid #d8dce2; border-radius: 6px;
}
table { border-collapse: collapse; min-width: 24em; font-size: 14px; }
th, td {
  padding: 7px 14px; text-align: left; vertical-align: top;
  border-bottom: 1px solid #e6e9ed; white-space: pre;
}
th { background: #eef1f5; font-weight: 600; }
td.long { white-space: pre-line; min-width: 28ch; max-width: 64ch; overflow-wrap: break-word; }
tbody tr:nth-child(even) { background: #f7f8fa; }
tbody tr:hover { background: #eaf2fb; }
tbody tr:last-child td { border-bottom: 0; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
.no-rows, .no-data { color: #5f6873; font-style: italic; }
figure { margin: 20px 0 0; }
figcaption { font-weight: 600; margin: 0 0 6px; overflow-wrap: anywhere; }
svg.chart { display: block; width: 100%; max-width: 860px; height: auto; }
@media print {
  body { background: #fff; }
  section { border: 0; padding: 0; }
  figure, tr { break-inside: avoid; }
}
"""


def render_html(title: str, sections: Sequence[ReportSection]) -> str:
    """The whole page of a report: its `title` as `<h1>`, then one `<section>` per report section."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_text(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_text(title)}</h1>",
    ]
    parts += [_section(section) for section in sections]
    parts += ["</main>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


# The page's look for a report shown inside another page (a notebook cell): every rule is scoped to
# the report's own element, so the notebook around it keeps its style.
_FRAGMENT_STYLE = """
.contexta-report { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.contexta-report section { border-top: 1px solid #d8dce2; padding: 8px 0 12px; }
.contexta-report p { white-space: pre-line; overflow-wrap: anywhere; max-width: 75ch; }
.contexta-report table { border-collapse: collapse; }
.contexta-report th, .contexta-report td {
  padding: 4px 12px; text-align: left; vertical-align: top; border-bottom: 1px solid #e6e9ed;
  white-space: pre;
}
.contexta-report td.long { white-space: pre-line; max-width: 64ch; overflow-wrap: break-word; }
.contexta-report th.num, .contexta-report td.num { text-align: right; }
.contexta-report svg.chart { display: block; width: 100%; max-width: 860px; height: auto; }
"""


def render_html_fragment(title: str, sections: Sequence[ReportSection]) -> str:
    """The report as one `<div>` to place inside another page (Jupyter's `_repr_html_`): the same
    sections as the page, with a style that applies to the report only."""
    parts = [
        '<div class="contexta-report">',
        f"<style>{_FRAGMENT_STYLE}</style>",
        f"<h1>{_text(title)}</h1>",
        *(_section(section) for section in sections),
        "</div>",
    ]
    return "\n".join(parts)


def _section(section: ReportSection) -> str:
    parts = ["<section>", f"<h2>{_text(section.title)}</h2>"]
    parts += [f"<p>{_text(paragraph)}</p>" for paragraph in section.paragraphs]
    if section.table is not None:
        parts.append(_table(section.table))
    parts += [_chart(chart) for chart in section.charts]
    parts.append("</section>")
    return "\n".join(parts)


def _table(table: ReportTable) -> str:
    # Markdown leaves an empty table out; a page says so, so the reader is not left looking for it.
    if not table.columns or not table.rows:
        return '<p class="no-rows">No rows.</p>'
    numeric = [_is_numeric_column(table, index) for index in range(len(table.columns))]
    header = "".join(
        f'<th scope="col"{_NUMERIC if is_numeric else ""}>{_text(column)}</th>'
        for column, is_numeric in zip(table.columns, numeric, strict=True)
    )
    rows = [
        "<tr>"
        + "".join(_cell(cell, is_numeric) for cell, is_numeric in zip(row, numeric, strict=True))
        + "</tr>"
        for row in table.rows
    ]
    return "\n".join(
        [
            '<div class="table-wrap">',
            "<table>",
            f"<thead><tr>{header}</tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>",
            "</table>",
            "</div>",
        ]
    )


def _chart(chart: ReportChart) -> str:
    return "\n".join(
        [
            '<figure class="chart">',
            f"<figcaption>{_text(chart.title)}</figcaption>",
            render_line_chart(chart),
            "</figure>",
        ]
    )


def _is_number(cell: Cell) -> bool:
    return isinstance(cell, int | float) and not isinstance(cell, bool)


def _is_numeric_column(table: ReportTable, index: int) -> bool:
    """A column whose filled cells are all numbers; its header is aligned with them, on the right."""
    cells = [row[index] for row in table.rows if row[index] is not None]
    return bool(cells) and all(_is_number(cell) for cell in cells)


def _cell(cell: Cell, in_numeric_column: bool) -> str:
    """A `<td>`: right-aligned in a column of numbers; long text wraps, short text stays on its line
    (a narrow window scrolls the table instead of breaking every word)."""
    text = text_cell(cell)
    if in_numeric_column:
        return f"<td{_NUMERIC}>{_text(text)}</td>"
    if len(text) > _LONG_CELL:
        return f'<td class="long">{_text(text)}</td>'
    return f"<td>{_text(text)}</td>"


def _text(value: str) -> str:
    return html_text(value)
