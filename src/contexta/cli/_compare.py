"""`contexta compare A B`: what changed from run A to run B."""

from __future__ import annotations

import argparse

from contexta.cli import _cells as cells
from contexta.cli._output import Output
from contexta.cli._sample_cells import non_finite_notes, shown_statistics
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace
from contexta.query import RunComparison, SampleAggregate

__all__ = ["compare_command"]

_RUN_LEVEL = "(run)"  # the stage column of metrics captured on the run itself


def _block(output: Output, title: str, empty: str, columns: list[Column], rows: list[list[str]]) -> None:
    output.line()
    if not rows:
        output.line(f"{title}: {empty}")
        return
    output.line(f"{title} ({len(rows)})")
    output.lines(render_table(columns, rows, output.width))


def _statistic(aggregate: SampleAggregate | None, statistic: str) -> float | int | None:
    if aggregate is None:
        return None
    value: float | int | None = aggregate.count if statistic == "samples" else getattr(aggregate, statistic)
    return value


def _sample_rows(comparison: RunComparison) -> list[list[str]]:
    """Per metric recorded inside samples: a row for the sample count and for each statistic shown
    (the share of a 0/1 metric, else mean, p50, p95), left, right and right minus left."""
    rows = []
    for metric in comparison.sample_metrics:
        for statistic in ("samples", *shown_statistics(metric.left, metric.right)):
            left, right = _statistic(metric.left, statistic), _statistic(metric.right, statistic)
            change = None if left is None or right is None else right - left
            rows.append(
                [
                    metric.stage_name,
                    metric.metric_key,
                    statistic,
                    cells.number(left),
                    cells.number(right),
                    cells.signed(change),
                ]
            )
    return rows


def _comparison_text(comparison: RunComparison, output: Output) -> None:
    output.line(f"From {comparison.left_run_id} (left) to {comparison.right_run_id} (right)")
    _block(
        output,
        "Metrics",
        "neither run recorded a metric",
        [
            Column("stage"),
            Column("metric"),
            Column("left", numeric=True),
            Column("right", numeric=True),
            Column("delta", numeric=True),
        ],
        [
            [
                _RUN_LEVEL if delta.stage_name is None else delta.stage_name,
                delta.metric_key,
                cells.number(delta.left),
                cells.number(delta.right),
                cells.signed(delta.delta),
            ]
            for delta in comparison.metric_deltas
        ],
    )
    if comparison.sample_metrics:
        _block(
            output,
            "Sample metrics, one value per sample",
            "",
            [
                Column("stage"),
                Column("metric"),
                Column("statistic", keep=True),
                Column("left", numeric=True),
                Column("right", numeric=True),
                Column("delta", numeric=True),
            ],
            _sample_rows(comparison),
        )
        aggregates = [
            aggregate
            for metric in comparison.sample_metrics
            for aggregate in (metric.left, metric.right)
            if aggregate is not None
        ]
        for note in non_finite_notes(aggregates):
            output.line(f"  {note}")
    _block(
        output,
        "Artifacts",
        "neither run registered an artifact",
        [
            Column("kind"),
            Column("change", keep=True),
            Column("left blake3", keep=True),
            Column("right blake3", keep=True),
        ],
        [
            [change.kind, change.change, cells.digest(change.left_digest), cells.digest(change.right_digest)]
            for change in comparison.artifact_changes
        ],
    )
    field_columns = [Column("field"), Column("left"), Column("right")]
    _block(
        output,
        "Arguments that differ",
        "none (dataset, code revision, tags, metadata and config are the same)",
        field_columns,
        [
            [difference.field, cells.value(difference.left), cells.value(difference.right)]
            for difference in comparison.argument_differences
        ],
    )
    _block(
        output,
        "Environment that differs",
        "none",
        field_columns,
        [
            [difference.field, cells.value(difference.left), cells.value(difference.right)]
            for difference in comparison.environment_differences
        ],
    )


def compare_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta compare A B`: per-stage metric deltas, artifact changes, argument and environment
    differences (json: the comparison)."""
    with open_workspace(args) as ctx:
        comparison = ctx.compare_runs(args.left, args.right, metric_keys=args.metrics)
    if args.format == "json":
        output.json(comparison.to_dict())
    else:
        _comparison_text(comparison, output)
    return 0
