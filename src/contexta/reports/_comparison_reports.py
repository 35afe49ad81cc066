"""Reports that compare runs: two runs side by side (`build_run_report`) and several runs' metrics
(`build_multi_run_report`), laid out from `contexta.query`'s comparisons, read in one consistent view."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from contexta.query import (
    FieldDifference,
    MetricSeries,
    MultiRunComparison,
    RunComparison,
    RunRecord,
    compare_multiple_runs,
    compare_runs,
    consistent_read,
    diagnose_run,
    get_metric_series,
    get_run,
    list_stages,
)
from contexta.reports._cells import Cell
from contexta.reports._charts import CHART_LIMIT, across_runs_chart, series_chart
from contexta.reports._document import ReportDocument
from contexta.reports._sample_wording import statistic_cells
from contexta.reports._sections import ReportChart, ReportSection, ReportTable
from contexta.reports._wording import duration_s, issue_counts, run_labels
from contexta.store import StoreDatabase

__all__ = ["build_multi_run_report", "build_run_report"]


def _cell(value: Any) -> Cell:
    """A value of a run argument or environment field as a report cell (structures as JSON text)."""
    if value is None or isinstance(value, str | int | float):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _difference_rows(differences: tuple[FieldDifference, ...]) -> list[tuple[Cell, ...]]:
    return [(difference.field, _cell(difference.left), _cell(difference.right)) for difference in differences]


def _series(db: StoreDatabase, run_id: str, key: str, stage_id: str | None) -> MetricSeries:
    """The points of `key` in one stage of the run, or (no stage) on the run itself."""
    return get_metric_series(db, run_id, key, stage_id, run_level=stage_id is None)


def _overlay_charts(
    db: StoreDatabase, comparison: RunComparison, runs: list[RunRecord], labels: list[str]
) -> list[ReportChart]:
    """For each metric both runs recorded more than once: both runs' series on one chart (a stage is
    matched by name, as the comparison matched it; the first stage of that name)."""
    stage_ids = [
        {stage.name: stage.stage_id for stage in reversed(list_stages(db, run.run_id))} for run in runs
    ]
    charts = []
    for delta in comparison.metric_deltas:
        if delta.left is None or delta.right is None:
            continue
        key, stage_name = delta.metric_key, delta.stage_name
        if stage_name is not None and not all(stage_name in ids for ids in stage_ids):
            continue  # a value from a stage the run does not list: there is no series to draw
        lines = [
            (label, _series(db, run.run_id, key, None if stage_name is None else ids[stage_name]))
            for run, label, ids in zip(runs, labels, stage_ids, strict=True)
        ]
        if all(len(series.points) > 1 for _, series in lines):
            where = "the run" if stage_name is None else f"stage {stage_name}"
            charts.append(series_chart(f"{key} in {where}", lines))
        if len(charts) == CHART_LIMIT:
            break
    return charts


def _sample_metrics_section(
    columns: tuple[str, ...], rows: list[tuple[Cell, ...]], paragraph: str
) -> ReportSection:
    return ReportSection(
        "Sample Metrics", (paragraph,), ReportTable(("stage", "metric", "statistic", *columns), rows)
    )


def _run_sample_rows(comparison: RunComparison) -> list[tuple[Cell, ...]]:
    """Per per-sample metric, a row per statistic: left, right, and right minus left."""
    rows: list[tuple[Cell, ...]] = []
    for metric in comparison.sample_metrics:
        for statistic, (left, right) in statistic_cells((metric.left, metric.right)):
            change = (
                right - left if isinstance(left, int | float) and isinstance(right, int | float) else None
            )
            rows.append((metric.stage_name, metric.metric_key, statistic, left, right, change))
    return rows


def _multi_sample_rows(comparison: MultiRunComparison) -> list[tuple[Cell, ...]]:
    """Per per-sample metric, a row per statistic with its value in each run."""
    return [
        (metric.stage_name, metric.metric_key, statistic, *values)
        for metric in comparison.sample_metrics
        for statistic, values in statistic_cells(metric.aggregates)
    ]


_SAMPLE_PARAGRAPH = (
    "Metrics recorded inside samples, summarised over the samples (one value per sample; NaN and "
    "infinite values are counted apart, as non_finite)."
)


def build_run_report(
    db: StoreDatabase, left: str, right: str, *, project: str | None = None
) -> ReportDocument:
    """Two runs side by side: Runs, Metric Deltas (with both runs' series drawn together), Sample
    Metrics (when either run recorded metrics inside samples), Artifacts, Arguments, Environment,
    Diagnostics."""
    with consistent_read(db):
        comparison = compare_runs(db, left, right, project=project)
        runs = [get_run(db, run_id) for run_id in (comparison.left_run_id, comparison.right_run_id)]
        diagnoses = [diagnose_run(db, run.run_id) for run in runs]
        labels = run_labels(runs)
        charts = _overlay_charts(db, comparison, runs, labels)
    old, new = runs
    counts = [issue_counts(diagnosis.issues) for diagnosis in diagnoses]
    run_rows: list[tuple[Cell, ...]] = [
        ("run_id", old.run_id, new.run_id),
        ("status", old.status, new.status),
        ("started_at", old.started_at, new.started_at),
        ("ended_at", old.ended_at, new.ended_at),
        ("duration_s", duration_s(old.started_at, old.ended_at), duration_s(new.started_at, new.ended_at)),
        ("dataset_ref", old.dataset_ref, new.dataset_ref),
        ("issues", *counts),
    ]
    delta_rows = [
        (delta.stage_name, delta.metric_key, delta.left, delta.right, delta.delta)
        for delta in comparison.metric_deltas
    ]
    artifact_rows = [
        (
            change.kind,
            change.change,
            change.left_ref,
            change.right_ref,
            change.left_digest,
            change.right_digest,
            change.left_size_bytes,
            change.right_size_bytes,
        )
        for change in comparison.artifact_changes
    ]
    issue_rows = [
        (label, issue.severity, issue.code, issue.subject_ref, issue.summary)
        for label, diagnosis in zip(labels, diagnoses, strict=True)
        for issue in diagnosis.issues
    ]
    left_label, right_label = labels
    sample_rows = _run_sample_rows(comparison)
    sample_sections = (
        [_sample_metrics_section((left_label, right_label, "delta"), sample_rows, _SAMPLE_PARAGRAPH)]
        if sample_rows
        else []
    )
    return ReportDocument(
        f"Run Report: {old.run_id} vs {new.run_id}",
        [
            ReportSection(
                "Runs",
                (f"{left_label} (left) against {right_label} (right); deltas are right minus left.",),
                ReportTable(("field", left_label, right_label), run_rows),
            ),
            ReportSection(
                "Metric Deltas",
                () if delta_rows else ("Neither run recorded a metric.",),
                ReportTable(("stage", "metric", left_label, right_label, "delta"), delta_rows),
                charts,
            ),
            *sample_sections,
            ReportSection(
                "Artifacts",
                () if artifact_rows else ("Neither run registered an artifact.",),
                ReportTable(
                    (
                        "kind",
                        "change",
                        "left_ref",
                        "right_ref",
                        "left_blake3",
                        "right_blake3",
                        "left_size_bytes",
                        "right_size_bytes",
                    ),
                    artifact_rows,
                ),
            ),
            ReportSection(
                "Arguments",
                () if comparison.argument_differences else ("Both runs were given the same arguments.",),
                ReportTable(
                    ("field", left_label, right_label), _difference_rows(comparison.argument_differences)
                ),
            ),
            ReportSection(
                "Environment",
                ()
                if comparison.environment_differences
                else ("Both runs ran in the same recorded environment.",),
                ReportTable(
                    ("field", left_label, right_label), _difference_rows(comparison.environment_differences)
                ),
            ),
            ReportSection(
                "Diagnostics",
                (f"{left_label}: {counts[0]}; {right_label}: {counts[1]}.",),
                ReportTable(("run", "severity", "code", "subject", "summary"), issue_rows),
            ),
        ],
    )


def build_multi_run_report(
    db: StoreDatabase, run_ids: Iterable[str], *, project: str | None = None
) -> ReportDocument:
    """Several runs side by side: titled `Multi Run Report: N runs`, with a table of the runs and a
    table of each metric's latest value per run (evaluation stages first), and of the statistics of
    each metric recorded inside samples (Sample Metrics, when any run has one)."""
    with consistent_read(db):
        comparison = compare_multiple_runs(db, run_ids, project=project)
        runs = [get_run(db, run_id) for run_id in comparison.run_ids]
        diagnoses = [diagnose_run(db, run_id) for run_id in comparison.run_ids]
    labels = run_labels(runs)
    run_rows = [
        (
            label,
            run.run_id,
            run.status,
            run.started_at,
            run.ended_at,
            run.dataset_ref,
            issue_counts(diagnosis.issues),
        )
        for label, run, diagnosis in zip(labels, runs, diagnoses, strict=True)
    ]
    metric_rows = [(metric.stage_name, metric.metric_key, *metric.values) for metric in comparison.metrics]
    sample_rows = _multi_sample_rows(comparison)
    sample_sections = (
        [_sample_metrics_section(tuple(labels), sample_rows, _SAMPLE_PARAGRAPH)] if sample_rows else []
    )
    return ReportDocument(
        f"Multi Run Report: {len(runs)} runs",
        [
            ReportSection(
                "Runs",
                (f"{len(runs)} runs, in the order given.",),
                ReportTable(
                    ("run", "run_id", "status", "started_at", "ended_at", "dataset_ref", "issues"), run_rows
                ),
            ),
            ReportSection(
                "Metrics",
                ("The latest value of each metric in each run; evaluation stages first.",)
                if metric_rows
                else ("None of these runs recorded a metric.",),
                ReportTable(("stage", "metric", *labels), metric_rows),
                [
                    across_runs_chart(metric.stage_name, metric.metric_key, labels, metric.values)
                    for metric in comparison.metrics[:CHART_LIMIT]
                    if len(runs) > 1 and sum(value is not None for value in metric.values) > 1
                ],
            ),
            *sample_sections,
        ],
    )
