"""The charts reports draw: each metric's series in a run, per batch, and a metric across runs.

Series are read through `contexta.query` (`get_metric_series`, whose points stay columns until walked),
and the renderer is handed at most `POINT_LIMIT` points per line: every k-th point, the last one, and
the extremes, so a million-point loss curve keeps its shape and its spikes without a million SVG
vertices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from contexta.query import BatchRecord, LatestMetric, MetricSeries, StageRecord, get_metric_series
from contexta.reports._sections import ChartSeries, ReportChart
from contexta.store import StoreDatabase

__all__ = [
    "CHART_LIMIT",
    "POINT_LIMIT",
    "across_runs_chart",
    "batch_charts",
    "chart_points",
    "series_chart",
    "stage_charts",
]

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


def series_chart(title: str, lines: Sequence[tuple[str, MetricSeries]]) -> ReportChart:
    """A chart of one metric: one line per (label, series), over steps when every line has them."""
    key = lines[0][1].metric_key
    columns = [(label, series.points.steps, series.points.values) for label, series in lines]
    x_label = "step" if all(None not in steps for _, steps, _ in columns) else "capture order"
    return ReportChart(
        title,
        x_label,
        key,
        [ChartSeries(label, chart_points(steps, values)) for label, steps, values in columns],
    )


def stage_charts(
    db: StoreDatabase, run_id: str, stages: Sequence[StageRecord], metrics: Sequence[LatestMetric]
) -> tuple[list[ReportChart], int]:
    """One chart per metric with more than one point in each stage (and on the run itself), from the
    run's latest metrics per stage, and how many such metrics were left out beyond the chart limit."""
    names = {stage.stage_id: stage.name for stage in stages}
    drawable = [metric for metric in metrics if metric.point_count > 1]
    charts = []
    for metric in drawable[:CHART_LIMIT]:
        stage_id, key = metric.stage_id, metric.metric_key
        series = get_metric_series(db, run_id, key, stage_id, run_level=stage_id is None)
        where = "the run" if stage_id is None else f"stage {names.get(stage_id, stage_id)}"
        charts.append(series_chart(f"{key} in {where}", [(key, series)]))
    return charts, max(0, len(drawable) - CHART_LIMIT)


def batch_charts(batches: Sequence[BatchRecord], scope_metrics: Sequence[LatestMetric]) -> list[ReportChart]:
    """Per metric recorded on batches (not their samples): its latest value in each batch, in batch
    order, from the run's latest metrics per scope."""
    order = {batch.batch_id: rank for rank, batch in enumerate(batches)}
    per_key: dict[str, dict[int, float | int]] = {}
    for metric in scope_metrics:
        if metric.batch_id is None or metric.sample_id is not None or metric.batch_id not in order:
            continue
        per_key.setdefault(metric.metric_key, {})[order[metric.batch_id]] = metric.value
    charts = []
    for key, by_batch in list(per_key.items())[:CHART_LIMIT]:
        if len(by_batch) < 2:
            continue
        points = [(float(rank + 1), float(value)) for rank, value in sorted(by_batch.items())]
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
