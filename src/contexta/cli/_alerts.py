"""`contexta alerts RULES_FILE`: evaluate alert rules on one run or every run, and exit 1 when any
rule fired, so a CI job fails on it (after printing, or writing, what it found)."""

from __future__ import annotations

import argparse

from contexta.cli import _cells as cells
from contexta.cli._document_output import emit_document, wants_document
from contexta.cli._metric_json import with_metric_tokens
from contexta.cli._output import CommandError, Output, UsageError
from contexta.cli._tables import Column, render_fields, render_table
from contexta.cli._workspace import open_workspace
from contexta.query import AlertReport, load_alert_rules
from contexta.reports import build_alert_report

__all__ = ["alerts_command"]

_OUTCOME_TEXT = {"fired": "FIRED", "ok": "ok", "no_data": "no data"}


def _outcome(outcome: str, fired: bool) -> str:
    text = _OUTCOME_TEXT.get(outcome, outcome)
    return f"{text} (fires)" if outcome == "no_data" and fired else text


def _summary(report: AlertReport) -> str:
    counts = report.outcome_counts
    rules, runs = len(report.rules), len(report.run_ids)
    return (
        f"{rules} {'rule' if rules == 1 else 'rules'} on {runs} {'run' if runs == 1 else 'runs'}: "
        f"{len(report.fired)} fired, {counts['ok']} ok, {counts['no_data']} no data"
    )


def _text(report: AlertReport, output: Output) -> None:
    """The rules with their conditions once, a row per rule and run, then the counts (last, where a
    CI log's tail shows them)."""
    output.line("Rules")
    conditions = [
        (rule.rule_name, "" if rule.rule_name == rule.condition else rule.condition) for rule in report.rules
    ]
    output.lines(render_fields(conditions, output.width))
    output.line()
    output.lines(
        render_table(
            [Column("outcome", keep=True), Column("rule"), Column("run"), Column("observed", numeric=True)],
            [
                [
                    _outcome(result.outcome, result.fired),
                    result.rule_name,
                    result.run_name,
                    cells.number(result.observed),
                ]
                for result in report.results
            ],
            output.width,
        )
    )
    output.line(_summary(report))


def alerts_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta alerts RULES_FILE [--run RUN | --filter EXPR] [--format text|json | --report
    md|html|json|csv] [--output PATH]`: every rule on the run, or on every run of --project (every
    project when not given); exit 1 when a rule fired, or when there was no run to evaluate."""
    if args.run is not None and args.filter is not None:
        raise UsageError("give --run RUN or --filter EXPR, not both: a filter selects the runs to evaluate")
    document = wants_document(args)
    rules = load_alert_rules(args.rules_file)  # a bad rules file fails before the workspace is opened
    with open_workspace(args) as ctx:
        report = ctx.evaluate_alerts(rules, run=args.run, project=args.project, filter=args.filter)
    if not report.run_ids:
        scope = "the workspace" if args.project is None else f"project {args.project}"
        raise CommandError(f"{scope} has no runs to evaluate the alert rules on")
    if document:
        emit_document(build_alert_report(report), args.report, args.output, output)
    elif args.format == "json":
        counts = report.outcome_counts
        summary = {"any_fired": report.any_fired, "outcome_counts": counts}
        output.json(with_metric_tokens({**report.to_dict(), **summary}))
    else:
        _text(report, output)
    if report.any_fired:
        raise CommandError(f"alerts fired: {_summary(report)}")
    return 0
