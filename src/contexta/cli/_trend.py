"""`contexta trend`: one value per run over time: a metric (`trend METRIC`), a stage's duration
(`--stage-duration STAGE`) or an artifact kind's size (`--artifact-size KIND`), as a table (json: the
trend), or as a report document with `--report FORMAT` / `--output PATH`."""

from __future__ import annotations

import argparse

from contexta import Workspace
from contexta.cli import _cells as cells
from contexta.cli._document_output import emit_document, wants_document
from contexta.cli._metric_json import with_metric_tokens
from contexta.cli._output import Output, UsageError
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace
from contexta.query import ArtifactSizeTrend, MetricTrend, StageDurationTrend
from contexta.reports import build_trend_report

__all__ = ["trend_command"]

AnyTrend = MetricTrend | StageDurationTrend | ArtifactSizeTrend


def _check_subject(args: argparse.Namespace) -> None:
    chosen = [args.metric is not None, args.stage_duration is not None, args.artifact_size is not None]
    if sum(chosen) != 1:
        raise UsageError("give one of: METRIC, --stage-duration STAGE, --artifact-size KIND")
    if args.metric is None and (args.stage is not None or args.aggregation is not None):
        raise UsageError("--stage and --aggregation apply to a metric trend (trend METRIC)")


def _trend(ctx: Workspace, args: argparse.Namespace) -> AnyTrend:
    if args.stage_duration is not None:
        return ctx.get_stage_duration_trend(args.stage_duration, project=args.project, filter=args.filter)
    if args.artifact_size is not None:
        return ctx.get_artifact_size_trend(args.artifact_size, project=args.project, filter=args.filter)
    return ctx.get_metric_trend(
        args.metric,
        stage=args.stage,
        project=args.project,
        filter=args.filter,
        aggregation=args.aggregation or "latest",
    )


def _heading(trend: AnyTrend) -> str:
    if isinstance(trend, MetricTrend):
        where = "" if trend.stage_name is None else f" in stage {trend.stage_name}"
        return f"{trend.aggregation} {trend.metric_key}{where}"
    if isinstance(trend, StageDurationTrend):
        return f"duration of stage {trend.stage_name}"
    return f"total size of {trend.kind} artifacts"


def _value_cells(trend: AnyTrend) -> tuple[list[Column], list[list[str]]]:
    """The columns after `run` and `started` for the trend's kind, and each point's cells in them."""
    if isinstance(trend, MetricTrend):
        return (
            [Column("value", numeric=True), Column("step", numeric=True), Column("points", numeric=True)],
            [
                [cells.number(point.value), cells.number(point.step), str(point.point_count)]
                for point in trend.points
            ],
        )
    if isinstance(trend, StageDurationTrend):
        return (
            [Column("duration", numeric=True), Column("stage status", keep=True)],
            [[cells.seconds(point.duration_s), point.stage_status] for point in trend.points],
        )
    return (
        [Column("total size", numeric=True), Column("artifacts", numeric=True)],
        [[cells.size(point.total_size_bytes), str(point.artifact_count)] for point in trend.points],
    )


def _text(trend: AnyTrend, output: Output) -> None:
    seen = len(trend.points) + len(trend.skipped)
    if not trend.points:
        output.line(f"No run has a value for the {_heading(trend)} ({seen} runs looked at).")
    else:
        output.line(f"The {_heading(trend)}, per run, oldest first")
        columns, values = _value_cells(trend)
        table = trend.table_columns()
        rows = [
            [name, cells.moment(started_at), *point_values]
            for name, started_at, point_values in zip(
                table["run_name"], table["started_at"], values, strict=True
            )
        ]
        output.lines(
            render_table([Column("run"), Column("started", keep=True), *columns], rows, output.width)
        )
    if trend.skipped:
        listed = ", ".join(f"{run.run_name} ({run.reason})" for run in trend.skipped)
        count = len(trend.skipped)
        output.line(f"{count} {'run' if count == 1 else 'runs'} left out: {listed}")


def trend_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta trend METRIC [--stage S] [--aggregation A] | --stage-duration STAGE | --artifact-size
    KIND [--filter EXPR] [--format text|json | --report md|html|json|csv] [--output PATH]`."""
    _check_subject(args)
    document = wants_document(args)
    with open_workspace(args) as ctx:
        trend = _trend(ctx, args)
    if document:
        emit_document(build_trend_report(trend), args.report, args.output, output)
    elif args.format == "json":
        output.json(with_metric_tokens(trend.to_dict()))
    else:
        _text(trend, output)
    return 0
