"""`contexta report`: a run, two runs, several runs or a project as a Markdown, HTML, JSON or CSV
document, printed or written to a file.

Printed, the document is made safe for a terminal (`_terminal.terminal_document`: a control
character or a line break inside a CSV cell shows as `\\x1b` / `\\n`); `--output PATH` writes the
rendering exactly as it is."""

from __future__ import annotations

import argparse
from pathlib import Path

from contexta import Workspace
from contexta.cli._output import Output, UsageError
from contexta.cli._workspace import open_workspace
from contexta.reports import ReportDocument

__all__ = ["REPORT_FORMATS", "report_command"]

REPORT_FORMATS = ("md", "html", "json", "csv")


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


def _document_format(requested: str | None, target: Path | None) -> str:
    """`--format`, else what the output file's suffix says (`report.html`), else Markdown."""
    if requested is not None:
        return requested
    suffix = "" if target is None else target.suffix.lower().lstrip(".")
    suffix = "md" if suffix == "markdown" else "html" if suffix == "htm" else suffix
    return suffix if suffix in REPORT_FORMATS else "md"


def _render(document: ReportDocument, document_format: str) -> str:
    if document_format == "html":
        return document.to_html()
    if document_format == "json":
        return document.to_json()
    if document_format == "csv":
        return document.to_csv()
    return document.to_markdown()


def report_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta report RUN | A B | --multi RUN ... | --project NAME --summary [--format md|html|json|csv]
    [--output PATH]`: the document on stdout, or written to PATH (whose absolute path is printed)."""
    _check_arguments(args)
    target = None if args.output is None else Path(args.output).expanduser()
    document_format = _document_format(args.format, target)
    with open_workspace(args) as ctx:
        text = _render(_build(ctx, args), document_format)
    if target is None:
        output.document(text, document_format)  # made safe for the terminal it may be shown on
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    output.line(str(target.resolve()))
    return 0
