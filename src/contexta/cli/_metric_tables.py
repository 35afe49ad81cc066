"""A run's metrics as terminal tables (`contexta run show`): the values captured outside samples as
latest / min / max / count per stage, and the metrics recorded inside samples as their statistics,
with a note for every one whose NaN or infinite values were left out."""

from __future__ import annotations

from collections.abc import Sequence

from contexta.cli import _cells as cells
from contexta.cli._metrics import RUN_LEVEL
from contexta.cli._output import Output
from contexta.cli._sample_cells import non_finite_notes
from contexta.cli._tables import Column, render_table
from contexta.query import MetricSummary, SampleAggregate

__all__ = ["show_metric_tables"]

_SAMPLE_STATISTICS = ("mean", "p50", "p95", "max", "share")


def _stage(summary: MetricSummary) -> str:
    return RUN_LEVEL if summary.stage_name is None else summary.stage_name


def _plain_rows(summaries: Sequence[MetricSummary]) -> list[list[str]]:
    return [
        [
            _stage(summary),
            summary.metric_key,
            cells.number(summary.latest),
            cells.number(summary.min),
            cells.number(summary.max),
            str(summary.point_count),
        ]
        for summary in summaries
        if summary.point_count
    ]


def _sample_rows(aggregates: Sequence[SampleAggregate]) -> list[list[str]]:
    return [
        [
            aggregate.stage_name,
            aggregate.metric_key,
            str(aggregate.count),
            *(cells.number(getattr(aggregate, statistic)) for statistic in _SAMPLE_STATISTICS),
        ]
        for aggregate in aggregates
    ]


def show_metric_tables(output: Output, summaries: Sequence[MetricSummary]) -> None:
    """`Metrics (n)` and `Sample metrics (n)` tables, each preceded by an empty line (`none` when the
    run has no such metric)."""
    plain = _plain_rows(summaries)
    output.line()
    if plain:
        output.line(f"Metrics ({len(plain)})")
        columns = [Column("stage"), Column("metric")]
        columns += [Column(title, numeric=True) for title in ("latest", "min", "max", "count")]
        output.lines(render_table(columns, plain, output.width))
    else:
        output.line("Metrics: none outside samples")
    aggregates = [summary.samples for summary in summaries if summary.samples is not None]
    if not aggregates:
        return
    output.line()
    output.line(f"Sample metrics ({len(aggregates)}): one value per sample")
    columns = [Column("stage"), Column("metric"), Column("samples", numeric=True)]
    columns += [Column(title, numeric=True) for title in _SAMPLE_STATISTICS]
    output.lines(render_table(columns, _sample_rows(aggregates), output.width))
    for note in non_finite_notes(aggregates):
        output.line(f"  {note}")
