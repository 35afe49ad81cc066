"""`contexta diagnose RUN`: what went wrong in a run or is unfinished, and what is missing."""

from __future__ import annotations

import argparse
import textwrap

from contexta.cli._output import CommandError, Output
from contexta.cli._tables import Column, render_table
from contexta.cli._terminal import terminal_safe
from contexta.cli._workspace import open_workspace
from contexta.query import DiagnosticsResult

__all__ = ["FAIL_ON_SEVERITIES", "diagnose_command"]

# The severities `--fail-on` accepts, least severe first.
FAIL_ON_SEVERITIES = ("warning", "error")


def _diagnosis_text(diagnosis: DiagnosticsResult, output: Output) -> None:
    if diagnosis.issues:
        output.line(f"Issues of {diagnosis.run_id} ({len(diagnosis.issues)})")
        output.lines(
            render_table(
                [
                    Column("severity", keep=True),
                    Column("code", keep=True),
                    Column("subject", keep_end=True),
                    Column("summary", wrap=True),
                ],
                [
                    [issue.severity, issue.code, issue.subject_ref, issue.summary]
                    for issue in diagnosis.issues
                ],
                output.width,
            )
        )
    else:
        output.line(f"No issues in {diagnosis.run_id}.")
    output.line()
    if not diagnosis.completeness_notes:
        output.line("Completeness: nothing is missing.")
        return
    output.line("Completeness notes")
    for note in diagnosis.completeness_notes:
        output.lines(
            textwrap.wrap(
                terminal_safe(note),  # escaped before wrapping: a line break in it shows as `\n`
                output.width,
                initial_indent="- ",
                subsequent_indent="  ",
                break_on_hyphens=False,
            )
        )


def diagnose_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta diagnose RUN [--fail-on warning|error]`: the run's issues and completeness notes;
    with `--fail-on`, exit 1 when an issue at least that severe exists (for CI)."""
    with open_workspace(args) as ctx:
        diagnosis = ctx.diagnose_run(args.run)
    if args.format == "json":
        output.json(diagnosis.to_dict())
    else:
        _diagnosis_text(diagnosis, output)
    if args.fail_on is not None and diagnosis.has_issues_at_least(args.fail_on):
        failing = FAIL_ON_SEVERITIES[FAIL_ON_SEVERITIES.index(args.fail_on) :]
        count = sum(1 for issue in diagnosis.issues if issue.severity in failing)
        raise CommandError(
            f"{diagnosis.run_id} has {count} issue{'' if count == 1 else 's'} at severity "
            f"{args.fail_on} or above (--fail-on {args.fail_on})"
        )
    return 0
