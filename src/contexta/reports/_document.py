"""Report documents: titled sections of paragraphs, tables and charts, rendered as Markdown, JSON, CSV
or a self-contained HTML page.

A document is plain data built once by a builder; each renderer only formats it, so the renderings
always agree with one another.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from contexta.errors import NotFoundError, ValidationError
from contexta.reports._escaping import csv_cell, markdown_cell, markdown_text

__all__ = ["Cell", "ChartSeries", "ReportChart", "ReportDocument", "ReportSection", "ReportTable"]

Cell = str | int | float | bool | None


def _format_number(value: float) -> str:
    return f"{value:.6g}"


def _text_cell(value: Cell) -> str:
    """A cell for people: numbers shortened, nothing shown as `-`."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _format_number(value)
    return str(value)


def _markdown_cell(value: Cell) -> str:
    return markdown_cell(_text_cell(value))


def _csv_cell(value: Cell) -> str:
    """A cell for programs: nothing is empty, numbers keep every digit, and text never runs as a
    spreadsheet formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return csv_cell(value)
    return str(value)


def _csv_lines(rows: list[list[str]]) -> str:
    """`rows` as CSV lines ending in `\\n`. The writer quotes only cells holding a character of its
    line terminator, so it is given `\\r\\n` (a lone carriage return in a cell, left unquoted, would
    make the file unreadable) and each record's terminator is then written as `\\n`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    lines = []
    for row in rows:
        writer.writerow(row)
        lines.append(buffer.getvalue()[:-2])
        buffer.seek(0)
        buffer.truncate()
    return "".join(line + "\n" for line in lines)


def _json_cell(value: Cell) -> Cell:
    if type(value) is float and value - value != 0:
        return _format_number(value)  # "nan", "inf" or "-inf"
    return value


def _check_cell(value: object) -> Cell:
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    raise ValidationError(
        f"a report cell must be a string, number, bool or None, got {type(value).__name__}; "
        "format it as text first",
        code="report_cell_invalid",
    )


@dataclass(frozen=True, slots=True)
class ReportTable:
    """Named columns and rows of cells; every row has one cell per column."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...] = ()

    def __init__(self, columns: Iterable[str], rows: Iterable[Iterable[Cell]] = ()):
        columns = tuple(str(column) for column in columns)
        checked_rows = tuple(tuple(_check_cell(cell) for cell in row) for row in rows)
        for index, row in enumerate(checked_rows):
            if len(row) != len(columns):
                raise ValidationError(
                    f"row {index} has {len(row)} cells but the table has {len(columns)} columns",
                    code="report_table_invalid",
                )
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", checked_rows)

    def to_dict(self) -> dict[str, Any]:
        """Columns and rows, JSON-ready: a NaN or infinite cell becomes the string "nan", "inf" or
        "-inf" (as Markdown and CSV show it), not null, so a diverged value is not read as missing."""
        return {
            "columns": list(self.columns),
            "rows": [[_json_cell(cell) for cell in row] for row in self.rows],
        }

    def column(self, name: str) -> tuple[Cell, ...]:
        """Every row's cell in the column `name`."""
        if name not in self.columns:
            raise NotFoundError(
                f"the table has no column {name!r} (its columns: {', '.join(self.columns)})",
                code="report_column_not_found",
            )
        index = self.columns.index(name)
        return tuple(row[index] for row in self.rows)


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """One line of a chart: a label and its (x, y) points in drawing order."""

    label: str
    points: tuple[tuple[float, float], ...]

    def __init__(self, label: str, points: Iterable[tuple[float | int, float | int]]):
        checked = []
        for point in points:
            x, y = point
            if (
                isinstance(x, bool)
                or isinstance(y, bool)
                or not isinstance(x, int | float)
                or not isinstance(y, int | float)
            ):
                raise ValidationError(
                    f"chart points are (x, y) numbers, got {point!r}", code="report_chart_invalid"
                )
            checked.append((float(x), float(y)))
        object.__setattr__(self, "label", str(label))
        object.__setattr__(self, "points", tuple(checked))

    def to_dict(self) -> dict[str, Any]:
        """Label and points; a point whose y is NaN or infinite (a gap in the drawn line) has y null
        in JSON (orjson's rendering of a non-finite float), since a chart has nothing to draw there."""
        return {"label": self.label, "points": [list(point) for point in self.points]}


@dataclass(frozen=True, slots=True)
class ReportChart:
    """A line chart: one or more series over a shared x axis (steps, batches, runs)."""

    title: str
    x_label: str
    y_label: str
    series: tuple[ChartSeries, ...]

    def __init__(self, title: str, x_label: str, y_label: str, series: Iterable[ChartSeries]):
        object.__setattr__(self, "title", str(title))
        object.__setattr__(self, "x_label", str(x_label))
        object.__setattr__(self, "y_label", str(y_label))
        object.__setattr__(self, "series", tuple(series))

    @property
    def point_count(self) -> int:
        return sum(len(line.points) for line in self.series)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "x_label": self.x_label,
            "y_label": self.y_label,
            "series": [line.to_dict() for line in self.series],
        }


@dataclass(frozen=True, slots=True)
class ReportSection:
    """A titled part of a report: paragraphs of text, an optional table, then any charts."""

    title: str
    paragraphs: tuple[str, ...] = ()
    table: ReportTable | None = None
    charts: tuple[ReportChart, ...] = ()

    def __init__(
        self,
        title: str,
        paragraphs: Sequence[str] = (),
        table: ReportTable | None = None,
        charts: Iterable[ReportChart] = (),
    ):
        if isinstance(paragraphs, str):  # a lone string would otherwise become one paragraph per letter
            paragraphs = (paragraphs,)
        object.__setattr__(self, "title", str(title))
        object.__setattr__(self, "paragraphs", tuple(str(paragraph) for paragraph in paragraphs))
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "charts", tuple(charts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "paragraphs": list(self.paragraphs),
            "table": None if self.table is None else self.table.to_dict(),
            "charts": [chart.to_dict() for chart in self.charts],
        }


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
        lines = [f"# {markdown_text(self.title)}"]
        for section in self.sections:
            lines += ["", f"## {markdown_text(section.title)}"]
            for paragraph in section.paragraphs:
                lines += ["", markdown_text(paragraph)]
            table = section.table
            # An empty table is left out of Markdown (its section says so); JSON and CSV keep the header.
            if table is not None and table.columns and table.rows:
                lines += ["", "| " + " | ".join(_markdown_cell(column) for column in table.columns) + " |"]
                lines.append("|" + "|".join(" --- " for _ in table.columns) + "|")
                lines += [
                    "| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in table.rows
                ]
            for chart in section.charts:  # Markdown cannot draw: say what the HTML rendering shows
                lines += [
                    "",
                    f"Chart: {markdown_text(chart.title)} ({markdown_text(chart.y_label)} by "
                    f"{markdown_text(chart.x_label)}; "
                    f"{len(chart.series)} series, {chart.point_count} points; drawn in the HTML report)",
                ]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """The report as one self-contained HTML page: inline CSS, tables, and an inline SVG line
        chart per chart; it fetches nothing, so it opens offline."""
        from contexta.reports._html import render_html  # the renderer imports this module's models

        return render_html(self)

    def to_csv(self) -> str:
        """Every table as CSV, one block per section that has one: a row holding the section title,
        the header row, the data rows; blocks are separated by an empty line. A text cell that a
        spreadsheet would run as a formula starts with `'` (see `_escaping.py`), and a cell holding
        a line break of either kind is quoted, so the text parses back with `csv.reader`."""
        blocks = [
            [
                [csv_cell(section.title)],
                [csv_cell(column) for column in section.table.columns],
                *([_csv_cell(cell) for cell in row] for row in section.table.rows),
            ]
            for section in self.sections
            if section.table is not None
        ]
        return "\n".join(_csv_lines(rows) for rows in blocks)
