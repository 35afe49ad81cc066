"""The charts reports draw: each metric's series in a run, per batch, and a metric across runs.

Builders read series from the store as columns and hand the renderer at most `POINT_LIMIT` points per
line: every k-th point, the last one, and the extremes, so a million-point loss curve keeps its shape
and its spikes without a million SVG vertices.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence

from contexta.query._completeness import RunFacts
from contexta.reports._sections import ChartSeries, ReportChart
from contexta.store._metric_points import SeriesRow, load_columns, select_series

__all__ = ["CHART_LIMIT", "POINT_LIMIT", "across_runs_chart", "batch_charts", "chart_points", "stage_charts"]

POINT_LIMIT = 2_000
CHART_LIMIT = 12  # per section: a run with hundreds of keys gets a note, not hundreds of charts


def chart_points(
    steps: Sequence[int | None], values: Sequence[float | int], limit: int = POINT_LIMIT
) -> list[tuple[float, float]]:
    """(x, y) points of a series: x is the step when every point has one, else the capture index.

    NaN and infinite values stay in, as points the renderer draws as gaps; a long series keeps the
    first point of each run of them (so every gap shows) and its extremes are taken among the finite.
    """
    count = len(values)
    if count == 0:
        return []
    use_steps = None not in steps
    indexes: Sequence[int]
    if count <= limit:
        indexes = range(count)
    else:
        stride = math.ceil(count / limit)
        chosen = set(range(0, count, stride))
        chosen.add(count - 1)
        if (total := sum(values)) - total == 0:  # no NaN or infinity (checked at C speed)
            chosen.add(values.index(max(values)))
            chosen.add(values.index(min(values)))
        else:
            chosen.update(_gaps_and_extremes(values, limit))
        indexes = sorted(chosen)
    return [
        (float(steps[index] if use_steps else index), float(values[index]))  # type: ignore[arg-type]
        for index in indexes
    ]


def _gaps_and_extremes(values: Sequence[float | int], limit: int) -> list[int]:
    """Where the first `limit` runs of non-finite values start, and the finite extremes."""
    finite = [value - value == 0 for value in values]
    starts = [
        index for index in range(len(values)) if not finite[index] and (index == 0 or finite[index - 1])
    ]
    kept = starts[:limit]
    numbers = [index for index, is_finite in enumerate(finite) if is_finite]
    if numbers:
        kept.append(max(numbers, key=values.__getitem__))
        kept.append(min(numbers, key=values.__getitem__))
    return kept


def _x_label(steps: Sequence[int | None]) -> str:
    return "step" if None not in steps else "capture order"


def stage_charts(connection: sqlite3.Connection, facts: RunFacts) -> tuple[list[ReportChart], int]:
    """One chart per metric with more than one point in each stage (and at run level), and how many
    such metrics were left out beyond the chart limit."""
    names = {stage.stage_id: stage.name for stage in facts.stages}
    slots: dict[tuple[str | None, str], list[SeriesRow]] = {}
    for series in select_series(connection, execution_id=facts.execution_id):
        slots.setdefault((series.stage_ref, series.key), []).append(series)
    drawable = [slot for slot, rows in slots.items() if sum(row.point_count for row in rows) > 1]
    charts = []
    for stage_ref, key in drawable[:CHART_LIMIT]:
        columns = load_columns(connection, slots[(stage_ref, key)])
        steps = columns.step_list()
        where = "the run" if stage_ref is None else f"stage {names.get(stage_ref, stage_ref)}"
        charts.append(
            ReportChart(
                f"{key} in {where}",
                _x_label(steps),
                key,
                [ChartSeries(key, chart_points(steps, columns.values))],
            )
        )
    return charts, max(0, len(drawable) - CHART_LIMIT)


def batch_charts(connection: sqlite3.Connection, facts: RunFacts) -> list[ReportChart]:
    """Per metric recorded inside batches: its latest value in each batch, in batch order."""
    order = {batch.batch_id: rank for rank, batch in enumerate(facts.batches)}
    per_key: dict[str, dict[int, tuple[int, float | int]]] = {}
    for series in select_series(connection, execution_id=facts.execution_id):
        if series.batch_ref is None or series.sample_ref is not None or series.batch_ref not in order:
            continue
        rank = order[series.batch_ref]
        known = per_key.setdefault(series.key, {}).get(rank)
        if known is None or series.last_seq > known[0]:
            per_key[series.key][rank] = (series.last_seq, series.last_value)
    charts = []
    for key, by_batch in list(per_key.items())[:CHART_LIMIT]:
        if len(by_batch) < 2:
            continue
        points = [(float(rank + 1), float(value)) for rank, (_, value) in sorted(by_batch.items())]
        charts.append(ReportChart(f"{key} per batch", "batch (in order)", key, [ChartSeries(key, points)]))
    return charts


def across_runs_chart(
    stage_name: str | None, key: str, labels: Sequence[str], values: Sequence[float | int | None]
) -> ReportChart:
    """A metric's latest value in each run, in the order the runs are listed (x = run number)."""
    where = "" if stage_name is None else f" ({stage_name})"
    points = [
        (float(number), float(value)) for number, value in enumerate(values, start=1) if value is not None
    ]
    legend = ", ".join(f"{number}={label}" for number, label in enumerate(labels, start=1))
    return ReportChart(f"{key}{where} across runs", f"run ({legend})", key, [ChartSeries(key, points)])
