"""`contexta metrics RUN`: which metric keys a run recorded in each stage, and how many values: points
captured outside samples, and how many samples recorded the key."""

from __future__ import annotations

import argparse

from contexta.cli import _cells as cells
from contexta.cli._output import Output
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace

__all__ = ["RUN_LEVEL", "metrics_command"]

RUN_LEVEL = "(run)"  # the stage column of metrics captured on the run itself


def metrics_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta metrics RUN`: per stage, each key with its point and sample counts (json: every
    `MetricSummary`, statistics included)."""
    with open_workspace(args) as ctx:
        run_id = ctx.get_run(args.run).run_id
        summaries = ctx.get_metric_summaries(run_id)
    if args.format == "json":
        output.json({"run_id": run_id, "metrics": [summary.to_dict() for summary in summaries]})
        return 0
    if not summaries:
        output.line(f"Run {run_id} recorded no metrics.")
        return 0
    output.line(f"Metrics of {run_id} ({len(summaries)})")
    rows = [
        [
            RUN_LEVEL if summary.stage_name is None else summary.stage_name,
            summary.metric_key,
            str(summary.point_count),
            cells.NOTHING if summary.samples is None else str(summary.samples.sample_count),
            str(
                summary.non_finite_count
                + (0 if summary.samples is None else summary.samples.non_finite_count)
            ),
        ]
        for summary in summaries
    ]
    columns = [
        Column("stage"),
        Column("metric"),
        Column("points", numeric=True),
        Column("samples", numeric=True),
        Column("nan/inf", numeric=True),
    ]
    output.lines(render_table(columns, rows, output.width))
    return 0
