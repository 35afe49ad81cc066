"""Report documents: titled sections of paragraphs, tables and charts, rendered as Markdown, JSON, CSV
or a self-contained HTML page.

A document is plain data built once by a builder; each renderer (`_markdown.py`, `_csv.py`,
`_html.py`, and the command line's terminal view) only formats it, so the renderings always agree with
one another.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from contexta.errors import NotFoundError
from contexta.reports._csv import render_csv
from contexta.reports._html import render_html, render_html_fragment
from contexta.reports._markdown import render_markdown
from contexta.reports._sections import ReportSection

__all__ = ["ReportDocument"]


@dataclass(frozen=True, slots=True)
class ReportDocument:
    """A report: a title and its sections, in reading order."""

    title: str
    sections: tuple[ReportSection, ...]

    def __init__(self, title: str, sections: Iterable[ReportSection]):
        object.__setattr__(self, "title", str(title))
        object.__setattr__(self, "sections", tuple(sections))

    def section(self, title: str) -> ReportSection:
        """The section titled `title`."""
        for section in self.sections:
            if section.title == title:
                return section
        raise NotFoundError(
            f"the report has no section {title!r} (its sections: "
            f"{', '.join(section.title for section in self.sections)})",
            code="report_section_not_found",
        )

    def to_dict(self) -> dict[str, Any]:
        """`{"title": ..., "sections": [{"title", "paragraphs", "table": {"columns", "rows"} | None,
        "charts": [{"title", "x_label", "y_label", "series": [{"label", "points": [[x, y], ...]}]}]}]}`."""
        return {"title": self.title, "sections": [section.to_dict() for section in self.sections]}

    def to_json(self) -> str:
        """`to_dict()` as indented JSON text."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()

    def to_markdown(self) -> str:
        """The report as Markdown: `#` title, `##` per section, paragraphs, then a pipe table. Text
        is escaped (see `_escaping.py`): no raw HTML, link or line break of captured text survives."""
        return render_markdown(self.title, self.sections)

    def to_html(self) -> str:
        """The report as one self-contained HTML page: inline CSS, tables, and an inline SVG line
        chart per chart; it fetches nothing, so it opens offline."""
        return render_html(self.title, self.sections)

    def _repr_html_(self) -> str:
        """Jupyter's rendering: the HTML report's sections and charts, styled for inside a notebook."""
        return render_html_fragment(self.title, self.sections)

    def to_csv(self) -> str:
        """Every table as one tidy CSV table, `section,row,column,value`: one record per table cell,
        rows counted from 1 within their section (see `_csv.py`). A text cell that a spreadsheet
        would run as a formula starts with `'` (see `_escaping.py`), and a cell holding a line break
        of either kind is quoted, so the text parses back with `csv.reader` or `pandas.read_csv`."""
        return render_csv(self.sections)
