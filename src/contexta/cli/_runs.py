"""`contexta runs`: the runs of a workspace, as a table (json: their records)."""

from __future__ import annotations

import argparse

from contexta.cli import _cells as cells
from contexta.cli._output import Output
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace
from contexta.query import RunRecord

__all__ = ["list_runs_command"]


def list_runs_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta runs`: a table of runs, oldest first (json: their records)."""
    with open_workspace(args) as ctx:
        runs = ctx.list_runs(
            args.project,
            status=args.status,
            limit=args.limit,
            all_executions=args.all_executions,
            include_archived=args.archived,
        )
        where = ctx.workspace
    if args.format == "json":
        output.json([run.to_dict() for run in runs])
        return 0
    if not runs:
        scope = "" if args.project is None else f" of project {args.project}"
        status = "" if args.status is None else f" with status {args.status}"
        output.line(f"No runs{scope}{status} in {where}.")
        return 0
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


def _execution_label(run: RunRecord) -> str:
    """`@2`, and `@3 latest` for the one the run's ref names."""
    return f"@{run.execution_number}{' latest' if run.latest else ''}"
