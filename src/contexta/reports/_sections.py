"""The parts of a report: sections of paragraphs, a table and charts, as plain frozen data.

A builder puts them together once; every renderer (Markdown, CSV, HTML here, the terminal in the
command line) only reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from contexta.errors import NotFoundError, ValidationError
from contexta.reports._cells import Cell, check_cell, json_cell

__all__ = ["ChartSeries", "ReportChart", "ReportSection", "ReportTable"]


@dataclass(frozen=True, slots=True)
class ReportTable:
    """Named columns and rows of cells; every row has one cell per column."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...] = ()

    def __init__(self, columns: Iterable[str], rows: Iterable[Iterable[Cell]] = ()):
        columns = tuple(str(column) for column in columns)
        checked_rows = tuple(tuple(check_cell(cell) for cell in row) for row in rows)
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
            "rows": [[json_cell(cell) for cell in row] for row in self.rows],
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
