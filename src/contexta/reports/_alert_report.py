"""The alert report: what evaluating alert rules found, fired results first, laid out from an
`AlertReport` already computed (`contexta.query.evaluate_alerts`), so a CI job can publish exactly
what it failed on."""

from __future__ import annotations

from contexta.errors import ValidationError
from contexta.query import AlertReport, AlertResult
from contexta.reports._cells import Cell
from contexta.reports._document import ReportDocument
from contexta.reports._sections import ReportSection, ReportTable

__all__ = ["build_alert_report"]

_RESULT_COLUMNS = ("rule", "run", "run_id", "observed", "step", "outcome", "fired")


def _result_row(result: AlertResult) -> tuple[Cell, ...]:
    return (
        result.rule_name,
        result.run_name,
        result.run_id,
        result.observed,
        result.step,
        result.outcome,
        result.fired,
    )


def _title(report: AlertReport) -> str:
    fired, checks = len(report.fired), len(report.results)
    if not fired:
        return f"Alert Report: nothing fired in {checks} checks"
    return f"Alert Report: {fired} of {checks} checks fired"


def build_alert_report(report: AlertReport) -> ReportDocument:
    """An alert evaluation as a document: Summary (each rule and its outcomes), Fired (the results
    that fired), Results (every rule on every run, oldest run first)."""
    if not isinstance(report, AlertReport):
        raise ValidationError(
            f"build_alert_report takes the AlertReport evaluate_alerts returns, got {type(report).__name__}",
            code="report_input_invalid",
        )
    counts = report.outcome_counts
    rule_rows = []
    for rule in report.rules:
        mine = [result for result in report.results if result.rule == rule]
        rule_rows.append(
            (
                rule.rule_name,
                rule.condition,
                rule.fire_on_no_data,
                sum(result.fired for result in mine),
                sum(result.outcome == "ok" for result in mine),
                sum(result.outcome == "no_data" for result in mine),
            )
        )
    runs = len(report.run_ids)
    summary = (
        f"{len(report.rules)} rules on {runs} {'run' if runs == 1 else 'runs'}: {counts['fired']} fired, "
        f"{counts['ok']} ok, {counts['no_data']} with no data (the run has no point of the metric there; "
        "that fires only for a rule with fire_on_no_data)."
    )
    fired = report.fired
    return ReportDocument(
        _title(report),
        [
            ReportSection(
                "Summary",
                (summary,),
                ReportTable(("rule", "condition", "fire_on_no_data", "fired", "ok", "no_data"), rule_rows),
            ),
            ReportSection(
                "Fired",
                ("Rules that fired, by run.",) if fired else ("No rule fired.",),
                ReportTable(_RESULT_COLUMNS, [_result_row(result) for result in fired]),
            ),
            ReportSection(
                "Results",
                ("Every rule on every run, oldest run first.",),
                ReportTable(_RESULT_COLUMNS, [_result_row(result) for result in report.results]),
            ),
        ],
    )
