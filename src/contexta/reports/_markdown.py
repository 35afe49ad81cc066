"""A report as Markdown: `#` title, `##` per section, paragraphs, a pipe table, and a line per chart
saying what the HTML rendering draws.

Text is escaped (see `_escaping.py`): no raw HTML, link or line break of captured text survives.
"""

from __future__ import annotations

from collections.abc import Sequence

from contexta.reports._cells import Cell, text_cell
from contexta.reports._escaping import markdown_cell, markdown_text
from contexta.reports._sections import ReportSection

__all__ = ["render_markdown"]


def _cell(value: Cell) -> str:
    return markdown_cell(text_cell(value))


def render_markdown(title: str, sections: Sequence[ReportSection]) -> str:
    """The whole Markdown text of a report titled `title`."""
    lines = [f"# {markdown_text(title)}"]
    for section in sections:
        lines += ["", f"## {markdown_text(section.title)}"]
        for paragraph in section.paragraphs:
            lines += ["", markdown_text(paragraph)]
        table = section.table
        # An empty table is left out of Markdown (its section says so); JSON and CSV keep the header.
        if table is not None and table.columns and table.rows:
            lines += ["", "| " + " | ".join(markdown_cell(column) for column in table.columns) + " |"]
            lines.append("|" + "|".join(" --- " for _ in table.columns) + "|")
            lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]
        for chart in section.charts:  # Markdown cannot draw: say what the HTML rendering shows
            lines += [
                "",
                f"Chart: {markdown_text(chart.title)} ({markdown_text(chart.y_label)} by "
                f"{markdown_text(chart.x_label)}; "
                f"{len(chart.series)} series, {chart.point_count} points; drawn in the HTML report)",
            ]
    return "\n".join(lines) + "\n"
