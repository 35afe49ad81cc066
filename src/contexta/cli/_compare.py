"""`contexta compare A B`: what changed from run A to run B."""

from __future__ import annotations

import argparse

from contexta.cli import _cells as cells
from contexta.cli._output import Output
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace
from contexta.query import RunComparison

__all__ = ["compare_command"]

_RUN_LEVEL = "(run)"  # the stage column of metrics captured on the run itself


def _block(output: Output, title: str, empty: str, columns: list[Column], rows: list[list[str]]) -> None:
    output.line()
    if not rows:
        output.line(f"{title}: {empty}")
        return
    output.line(f"{title} ({len(rows)})")
    output.lines(render_table(columns, rows, output.width))


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
        comparison = ctx.compare_runs(args.left, args.right)
    if args.format == "json":
        output.json(comparison.to_dict())
    else:
        _comparison_text(comparison, output)
    return 0
