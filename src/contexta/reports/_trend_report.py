"""The trend report: a trend across runs (a metric, a stage's duration, an artifact kind's size) as a
table, a chart of the value over the runs, and the runs left out.

It is laid out from a trend already computed (`contexta.query.get_*_trend`), so the document shows
exactly the numbers the caller holds; the chart is the one the project report draws across runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from contexta.errors import ValidationError
from contexta.query import ArtifactSizeTrend, MetricTrend, SkippedRun, StageDurationTrend
from contexta.reports._charts import across_runs_chart
from contexta.reports._document import ReportDocument
from contexta.reports._sections import ReportChart, ReportSection, ReportTable
from contexta.reports._wording import number_text

__all__ = ["AnyTrend", "build_trend_report"]

AnyTrend = MetricTrend | StageDurationTrend | ArtifactSizeTrend

_SKIP_WORDING = {
    "no_metric": "did not record the metric there",
    "no_stage": "have no such stage",
    "stage_open": "have the stage still open",
    "no_artifact": "registered no artifact of the kind",
}


def _labels(names: Sequence[str], run_ids: Sequence[str]) -> list[str]:
    """Each run's name, or its full id when two of the runs share a name."""
    shared = {name for name, count in Counter(names).items() if count > 1}
    return [run_id if name in shared else name for name, run_id in zip(names, run_ids, strict=True)]


def _subject(trend: AnyTrend) -> tuple[str, str]:
    """(the report's title, what the value is, as a chart's y label)."""
    if isinstance(trend, MetricTrend):
        where = "" if trend.stage_name is None else f" in {trend.stage_name}"
        return f"Metric Trend: {trend.metric_key}{where} ({trend.aggregation})", trend.metric_key
    if isinstance(trend, StageDurationTrend):
        return f"Stage Duration Trend: {trend.stage_name}", f"{trend.stage_name} duration_s"
    return f"Artifact Size Trend: {trend.kind}", f"{trend.kind} total_size_bytes"


def _summary(trend: AnyTrend, labels: Sequence[str]) -> list[str]:
    seen = len(trend.points) + len(trend.skipped)
    if not trend.points:
        return [f"None of the {seen} runs has a value to show."]
    values = trend.values
    text = [
        f"{len(trend.points)} of {seen} runs, oldest first: {number_text(values[0])} in {labels[0]} "
        f"to {number_text(values[-1])} in {labels[-1]}."
    ]
    for reason, count in trend.skipped_counts.items():
        runs = "run" if count == 1 else "runs"
        text.append(f"{count} {runs} left out: they {_SKIP_WORDING.get(reason, reason)}.")
    return text


def _scalar_table(columns: dict[str, list[Any]], labels: Sequence[str]) -> ReportTable:
    """The trend's table with the run labels first; columns holding a list per run are left to a
    section of their own."""
    kept = {
        name: values
        for name, values in columns.items()
        if name not in ("run_id", "run_name") and not any(isinstance(value, list) for value in values)
    }
    rows = zip(labels, columns["run_id"], *kept.values(), strict=True)
    return ReportTable(("run", "run_id", *kept), rows)


def _artifact_section(trend: ArtifactSizeTrend, labels: Sequence[str]) -> ReportSection:
    rows = [
        (label, item.artifact_ref, item.size_bytes, item.stage_id)
        for label, point in zip(labels, trend.points, strict=True)
        for item in point.artifacts
    ]
    return ReportSection(
        "Artifacts",
        ("Each artifact of the kind, by run; one registered before its file existed has no size.",),
        ReportTable(("run", "artifact_ref", "size_bytes", "stage"), rows),
    )


def _skipped_section(skipped: Sequence[SkippedRun]) -> ReportSection:
    return ReportSection(
        "Skipped Runs",
        ("Runs with no value to show, and why.",) if skipped else ("Every run has a value.",),
        ReportTable(("run", "run_id", "reason"), [(run.run_name, run.run_id, run.reason) for run in skipped]),
    )


def build_trend_report(trend: AnyTrend) -> ReportDocument:
    """A trend as a document: Trend (a table with one row per run and a chart of the value over
    the runs), Artifacts (for an artifact size trend: each artifact), Skipped Runs."""
    if not isinstance(trend, MetricTrend | StageDurationTrend | ArtifactSizeTrend):
        raise ValidationError(
            "build_trend_report takes a trend from get_metric_trend, get_stage_duration_trend or "
            f"get_artifact_size_trend, got {type(trend).__name__}",
            code="report_input_invalid",
        )
    title, value_label = _subject(trend)
    columns = trend.table_columns()
    labels = _labels(columns["run_name"], columns["run_id"])
    charts: list[ReportChart] = []
    if len(trend.points) > 1:
        charts.append(across_runs_chart(None, value_label, labels, trend.values))
    sections = [ReportSection("Trend", _summary(trend, labels), _scalar_table(columns, labels), charts)]
    if isinstance(trend, ArtifactSizeTrend):
        sections.append(_artifact_section(trend, labels))
    sections.append(_skipped_section(trend.skipped))
    return ReportDocument(title, sections)
