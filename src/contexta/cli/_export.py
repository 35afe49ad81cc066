"""`contexta export`: runs, metric points or samples as one tidy table, written as Parquet, CSV or
JSON Lines.

One row per run (`--table runs`: every field of the run's record, or the fields `--columns` names:
`name,params.lr,metrics.accuracy`), per metric point (`points`: run, stage, key, step, value, time,
batch, sample) or per sample (`samples`: status, end reason, a `metrics.<key>` column per key any of
the runs' samples recorded, event messages), for the runs chosen (every run of the workspace, or of
`--project`, those `--filter` keeps, or those `--run` names). `-o PATH` writes the file (its
format from `--format`, else PATH's suffix) and prints its path; without it CSV or JSON Lines is
printed, made safe for a terminal as every document is (`_terminal.py`): use `-o` for the exact
bytes. Parquet, being binary, is only written to a file.
"""

from __future__ import annotations

import argparse
import io
from dataclasses import replace
from pathlib import Path

from contexta import Workspace
from contexta.cli._output import Output, UsageError
from contexta.cli._workspace import open_workspace
from contexta.errors import ValidationError
from contexta.query import (
    TABLE_FORMATS,
    MetricHistory,
    RunRecord,
    RunsTable,
    SampleTable,
    Tabular,
    runs_table,
    stack_tables,
    table_format,
    write_csv,
    write_jsonl,
    write_table,
)

__all__ = ["EXPORT_FORMATS", "EXPORT_TABLES", "export_command"]

EXPORT_FORMATS = TABLE_FORMATS
EXPORT_TABLES = ("runs", "points", "samples")


def _export_format(requested: str | None, target: Path | None) -> str:
    """`--format`, else the output file's suffix, else CSV (printed)."""
    if requested is not None:
        return requested
    if target is None:
        return "csv"
    try:
        return table_format(target)
    except ValidationError:
        raise UsageError(
            f"cannot tell the format from {target.name!r}: give --format {'|'.join(EXPORT_FORMATS)} "
            "or name the file .parquet, .csv or .jsonl"
        ) from None


def select_runs(ctx: Workspace, args: argparse.Namespace) -> list[RunRecord]:
    """The runs an export covers: those `--run` names (in that order), else every run of `--project`
    (or of the workspace) that `--filter` keeps, oldest first. The one place runs are chosen for
    every table."""
    if args.runs:
        if args.filter is not None:
            raise UsageError("give --run or --filter, not both")
        return [ctx.get_run(run_id) for run_id in dict.fromkeys(args.runs)]
    return ctx.list_runs(args.project, filter=args.filter)


def build_table(ctx: Workspace, table: str, runs: list[RunRecord], columns: str | None = None) -> Tabular:
    """The table `table` over `runs`: one row per run, per metric point or per sample."""
    if columns is not None and table != "runs":
        raise UsageError("--columns chooses the fields of --table runs")
    if table == "runs":
        if columns is None:
            return runs_table(runs)
        return _chosen_columns(ctx, runs, columns)
    if table == "points":
        histories = [ctx.metric_history(run.run_id) for run in runs]
        return stack_tables(histories) if histories else MetricHistory("", ())
    return _samples(ctx, runs)


def _chosen_columns(ctx: Workspace, runs: list[RunRecord], columns: str) -> RunsTable:
    """`runs` as the fields `columns` names, one row each in the order of `runs` (the run's id picks
    the row, whether or not it is one of the columns shown)."""
    ctx.get_runs_table(columns=columns, limit=1)  # a fault in what was typed is pointed at as typed
    table = ctx.get_runs_table(columns=f"run_id,{columns}", include_archived=True)
    by_run = {row[0]: row[1:] for row in table.rows}
    missing = [run.run_id for run in runs if run.run_id not in by_run]
    if missing:
        raise UsageError(f"--columns shows the latest execution of each run; {missing[0]} is an earlier one")
    return replace(table, columns=table.columns[1:], rows=[by_run[run.run_id] for run in runs])


def _samples(ctx: Workspace, runs: list[RunRecord]) -> Tabular:
    """Every sample of `runs`, one row each, with a `metrics.<key>` column for every key any of them
    recorded (empty where a sample did not), so the runs' tables stack into one."""
    tables: list[SampleTable] = [ctx.get_sample_table(run.run_id) for run in runs]
    if not tables:
        return SampleTable(run_id="", stage_name=None, failed_only=False, metric_keys=(), rows=())
    keys = tuple(dict.fromkeys(key for part in tables for key in part.metric_keys))
    return stack_tables([part.with_metric_keys(keys) for part in tables])


def _printed(table: Tabular, export_format: str) -> str:
    if export_format == "csv":
        text = io.StringIO(newline="")
        write_csv(table, text)
        return text.getvalue()
    data = io.BytesIO()
    write_jsonl(table, data)
    return data.getvalue().decode()


def export_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta export [--table runs|points|samples] [--format parquet|csv|jsonl] [--run R ...]
    [--project P] [-o PATH]`."""
    target = None if args.output is None else Path(args.output).expanduser()
    export_format = _export_format(args.format, target)
    if target is None and export_format == "parquet":
        raise UsageError("Parquet is binary: give -o PATH to write it to a file")
    with open_workspace(args) as ctx:
        table = build_table(ctx, args.table, select_runs(ctx, args), args.columns)
        if target is not None:
            written = write_table(table, target, export_format)
            output.line(str(written.resolve()))
            return 0
        text = _printed(table, export_format)
    output.document(text, "csv" if export_format == "csv" else "json")
    return 0
