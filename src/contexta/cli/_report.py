"""`contexta report`: a run, two runs, several runs or a project as a Markdown, HTML, JSON or CSV
document, printed or written to a file.

Printed, the document is made safe for a terminal (`_terminal.terminal_document`: a control
character or a line break inside a CSV cell shows as `\\x1b` / `\\n`); `--output PATH` writes the
rendering exactly as it is."""

from __future__ import annotations

import argparse

from contexta import Workspace
from contexta.cli._document_output import REPORT_FORMATS, emit_document
from contexta.cli._output import Output, UsageError
from contexta.cli._workspace import open_workspace
from contexta.reports import ReportDocument

__all__ = ["REPORT_FORMATS", "report_command"]


def _summary_project(ctx: Workspace, project: str | None) -> str:
    if project is not None:
        return project
    projects = sorted({run.project_name for run in ctx.list_runs(include_archived=True)})
    if len(projects) == 1:
        return projects[0]
    known = ", ".join(projects) if projects else "none yet"
    raise UsageError(
        f"--summary needs --project NAME when the workspace does not hold exactly one (projects: {known})"
    )


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse combinations that name no report, before the workspace is opened."""
    runs = len(args.runs)
    if args.summary and (runs or args.multi):
        raise UsageError("--summary reports on a whole project: give --project NAME, not runs or --multi")
    if args.multi and not runs:
        raise UsageError("--multi needs the runs to report on: report --multi RUN [RUN ...]")
    if not (args.summary or args.multi or runs in (1, 2)):
        raise UsageError(
            "give one run (snapshot report), two runs (what changed), --multi RUN [RUN ...], "
            "or --project NAME --summary"
        )


def _build(ctx: Workspace, args: argparse.Namespace) -> ReportDocument:
    runs: list[str] = list(args.runs)
    if args.summary:
        return ctx.build_project_summary_report(_summary_project(ctx, args.project))
    if args.multi:
        return ctx.build_multi_run_report(runs)
    if len(runs) == 1:
        return ctx.build_snapshot_report(runs[0])
    return ctx.build_run_report(runs[0], runs[1])


def report_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta report RUN | A B | --multi RUN ... | --project NAME --summary [--format md|html|json|csv]
    [--output PATH]`: the document on stdout, or written to PATH (whose absolute path is printed)."""
    _check_arguments(args)
    with open_workspace(args) as ctx:
        document = _build(ctx, args)
    emit_document(document, args.format, args.output, output)
    return 0
