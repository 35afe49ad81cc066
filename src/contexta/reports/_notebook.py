"""What Jupyter shows for Contexta's read models (`_repr_html_`): tables, metric series, reports.

Everything captured (names, keys, values, messages) is written through the reports' HTML escaping
(`_escaping.html_text`), so a run named `<script>` shows as that text. A table shows its first
`NOTEBOOK_ROWS` rows and says how many it has (a million-point series is not a million-row page); a
series is drawn as an inline SVG line chart by the reports' renderer, thinned as in reports, above its
first points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from contexta.query import MetricSeries, Tabular, typed_columns
from contexta.reports._cells import text_cell
from contexta.reports._charts import chart_points
from contexta.reports._escaping import html_text
from contexta.reports._sections import ChartSeries, ReportChart
from contexta.reports._svg import render_line_chart

__all__ = ["NOTEBOOK_CHARTS", "NOTEBOOK_ROWS", "notebook_series_html", "notebook_table_html"]

NOTEBOOK_ROWS = 20
"""Rows a table shows in a notebook; the caption gives the total (use `to_pandas()` for the rest)."""

NOTEBOOK_CHARTS = 12
"""Lines one chart draws; a history with more keys draws the first and says how many are left out."""


_RIGHT = ' style="text-align: right"'


def _cell_text(value: Any, column_type: str) -> str:
    if column_type == "json" and value is not None:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
    if value is None or isinstance(value, str | int | float):
        return text_cell(value)
    return str(value)


def _caption(title: str, shown: int, total: int) -> str:
    rows = "row" if total == 1 else "rows"
    if shown < total:
        return f"{title}: the first {shown:,} of {total:,} {rows}"
    return f"{title}: {total:,} {rows}"


def notebook_table_html(table: Tabular, *, max_rows: int = NOTEBOOK_ROWS, title: str | None = None) -> str:
    """`table` as an HTML table of its first `max_rows` rows, captioned with its row count."""
    columns = typed_columns(table)
    total = len(columns[0].values) if columns else 0
    shown = min(total, max_rows)
    caption = _caption(title or type(table).__name__, shown, total)
    header = "".join(f'<th scope="col">{html_text(column.name)}</th>' for column in columns)
    heads = [column.values[:shown] for column in columns]
    numeric = [column.type in ("int64", "float64") for column in columns]
    rows = [
        "<tr>"
        + "".join(
            f"<td{_RIGHT if is_number else ''}>{html_text(_cell_text(values[index], column.type))}</td>"
            for column, values, is_number in zip(columns, heads, numeric, strict=True)
        )
        + "</tr>"
        for index in range(shown)
    ]
    return "\n".join(
        [
            '<div class="contexta-table">',
            '<table class="dataframe">',
            f'<caption style="caption-side: top; text-align: left">{html_text(caption)}</caption>',
            f"<thead><tr>{header}</tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>",
            "</table>",
            "</div>",
        ]
    )


def notebook_series_html(title: str, series: Sequence[MetricSeries]) -> str:
    """One line chart of `series` (by step where every point has one, else by capture index), then
    their first points as a table."""
    from contexta.query import stack_tables

    drawn = [line for line in series if len(line.points)][:NOTEBOOK_CHARTS]
    chart = ReportChart(
        title,
        "step",
        "value" if len(drawn) != 1 else drawn[0].metric_key,
        [ChartSeries(line.metric_key, chart_points(line.points.steps, line.points.values)) for line in drawn],
    )
    left_out = sum(1 for line in series if len(line.points)) - len(drawn)
    parts = ['<div class="contexta-series">', render_line_chart(chart)]
    if left_out:
        parts.append(f"<p>{left_out} more keys are not drawn; pick them with keys=[...].</p>")
    parts.append(notebook_table_html(stack_tables(series), title=title))
    parts.append("</div>")
    return "\n".join(parts)
