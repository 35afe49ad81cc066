"""`contexta export`: runs, metric points or samples as one tidy table, written as Parquet, CSV or
JSON Lines.

One row per run (`--table runs`: every field of the run's record), per metric point (`points`: run,
stage, key, step, value, time, batch, sample) or per sample (`samples`), for the runs chosen (every
run of the workspace, or of `--project`, unless `--run` names some). `-o PATH` writes the file (its
format from `--format`, else PATH's suffix) and prints its path; without it CSV or JSON Lines is
printed, made safe for a terminal as every document is (`_terminal.py`): use `-o` for the exact
bytes. Parquet, being binary, is only written to a file.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from contexta import Workspace
from contexta.cli._output import Output, UsageError
from contexta.cli._workspace import open_workspace
from contexta.errors import ValidationError
from contexta.query import (
    TABLE_FORMATS,
    MetricHistory,
    RunRecord,
    Tabular,
    runs_table,
    samples_table,
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
    (or of the workspace), oldest first.

    THE one place runs are chosen for every table: a `--filter EXPR` option narrows `runs` here.
    """
    if args.runs:
        runs = [ctx.get_run(run_id) for run_id in dict.fromkeys(args.runs)]
    else:
        runs = ctx.list_runs(args.project)
    return runs


def build_table(ctx: Workspace, table: str, runs: list[RunRecord]) -> Tabular:
    """The table `table` over `runs`: one row per run, per metric point or per sample."""
    if table == "runs":
        return runs_table(runs)
    if table == "points":
        histories = [ctx.metric_history(run.run_id) for run in runs]
        return stack_tables(histories) if histories else MetricHistory("", ())
    # One row per sample from the sample records' own fields; a richer sample table (its metrics and
    # events per sample) takes the place of `samples_table` here.
    parts = [samples_table(run.run_id, ctx.list_samples(run.run_id)) for run in runs]
    return stack_tables(parts) if parts else samples_table("", ())


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
        table = build_table(ctx, args.table, select_runs(ctx, args))
        if target is not None:
            written = write_table(table, target, export_format)
            output.line(str(written.resolve()))
            return 0
        text = _printed(table, export_format)
    output.document(text, "csv" if export_format == "csv" else "json")
    return 0
