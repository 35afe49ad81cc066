"""`contexta runs`: the runs of a workspace, as a table (json: their records), found with `--filter`,
`--tag`, ordered with `--sort`, paged with `--limit` / `--offset`, and shown as chosen `--columns`."""

from __future__ import annotations

import argparse
from typing import Any

from contexta.cli import _cells as cells
from contexta.cli._output import Output, UsageError
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace
from contexta.errors import ValidationError
from contexta.query import RunFilter, RunRecord, RunsTable, parse_run_filter, tag_filter

__all__ = ["list_runs_command"]

EXIT_USAGE = 2
# Errors in what the user typed that point at a column of it: shown with their caret, exit 2.
_POINTED_CODES = ("filter_invalid", "sort_invalid", "columns_invalid")


def _run_filter(args: argparse.Namespace) -> RunFilter | None:
    """`--filter` and every `--tag`, all of which a run must pass."""
    parts = [] if args.filter is None else [parse_run_filter(args.filter)]
    for tag in args.tag:
        name, equals, value = tag.partition("=")
        if not name:
            raise UsageError(f"--tag takes NAME or NAME=VALUE, got {tag!r}")
        parts.append(tag_filter(name, value if equals else None))
    if args.status is not None and args.columns is not None:
        parts.append(parse_run_filter(f"status = {args.status}"))
    combined: RunFilter | None = None
    for part in parts:
        combined = part if combined is None else combined & part
    return combined


def list_runs_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta runs`: a table of runs, oldest first unless sorted (json: their records, or with
    `--columns` one object per run)."""
    if args.columns is not None and args.all_executions:
        raise UsageError("--columns shows the latest execution of each run; leave out --all")
    try:
        run_filter = _run_filter(args)
        with open_workspace(args) as ctx:
            where = ctx.workspace
            if args.columns is not None:
                table = ctx.get_runs_table(
                    args.project,
                    filter=run_filter,
                    sort=args.sort,
                    columns=args.columns,
                    limit=args.limit,
                    offset=args.offset,
                    include_archived=args.archived,
                )
                return _print_table(table, args, output, where)
            runs = ctx.list_runs(
                args.project,
                status=args.status,
                limit=args.limit,
                offset=args.offset,
                filter=run_filter,
                sort=args.sort,
                all_executions=args.all_executions,
                include_archived=args.archived,
            )
    except ValidationError as error:
        if error.code not in _POINTED_CODES:
            raise
        output.pointed_error(error.message)
        return EXIT_USAGE
    return _print_runs(runs, args, output, where)


def _nothing_found(args: argparse.Namespace, output: Output, where: object) -> int:
    scope = "" if args.project is None else f" of project {args.project}"
    status = "" if args.status is None else f" with status {args.status}"
    matching = "" if args.filter is None and not args.tag else " matching the filter"
    output.line(f"No runs{scope}{status}{matching} in {where}.")
    return 0


def _print_runs(runs: list[RunRecord], args: argparse.Namespace, output: Output, where: object) -> int:
    if args.format == "json":
        output.json([run.to_dict() for run in runs])
        return 0
    if not runs:
        return _nothing_found(args, output, where)
    columns = [
        Column("name"),
        *([Column("execution", keep=True)] if args.all_executions else []),
        Column("status", keep=True),
        Column("started", keep=True),
        Column("ended", keep=True),
        Column("duration", numeric=True),
        Column("project"),
        *([Column("archived", keep=True)] if args.archived else []),
    ]
    rows = [
        [
            run.name,
            *([_execution_label(run)] if args.all_executions else []),
            run.status,
            cells.moment(run.started_at),
            cells.end_moment(run.started_at, run.ended_at),
            cells.duration(run.started_at, run.ended_at),
            run.project_name,
            *(["archived" if run.archived else "-"] if args.archived else []),
        ]
        for run in runs
    ]
    output.lines(render_table(columns, rows, output.width))
    return 0


def _cell(column: str, item: Any) -> str:
    if column == "started_at" and isinstance(item, str):
        return cells.moment(item)
    if column == "duration":
        return cells.seconds(item)
    return cells.value(item)


def _print_table(table: RunsTable, args: argparse.Namespace, output: Output, where: object) -> int:
    """The chosen columns: json one object per run (values as stored), text a table."""
    if args.format == "json":
        output.json([dict(zip(table.columns, row, strict=True)) for row in table.rows])
        return 0
    if not table.rows:
        return _nothing_found(args, output, where)
    by_column = table.table_columns()
    columns = [
        Column(
            name,
            numeric=all(type(item) in (int, float, type(None)) for item in by_column[name]),
            keep=name in ("status", "started_at", "duration"),
        )
        for name in table.columns
    ]
    rows = [[_cell(name, item) for name, item in zip(table.columns, row, strict=True)] for row in table.rows]
    output.lines(render_table(columns, rows, output.width))
    return 0


def _execution_label(run: RunRecord) -> str:
    """`@2`, and `@3 latest` for the one the run's ref names."""
    return f"@{run.execution_number}{' latest' if run.latest else ''}"
