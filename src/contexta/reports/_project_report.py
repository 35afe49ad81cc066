"""The project summary report: a project's runs, their evaluation results, deployments and issues,
laid out from `contexta.query` answers read in one consistent view."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from contexta.query import (
    EVALUATION_STAGE_NAMES,
    MetricAcrossRuns,
    MultiRunComparison,
    compare_multiple_runs,
    consistent_read,
    diagnose_run,
    list_deployments,
    list_runs,
    resolve_project,
)
from contexta.reports._cells import Cell
from contexta.reports._charts import CHART_LIMIT, across_runs_chart
from contexta.reports._document import ReportDocument
from contexta.reports._sections import ReportChart, ReportSection, ReportTable
from contexta.reports._wording import duration_s, issue_counts, run_labels
from contexta.store import StoreDatabase

__all__ = ["build_project_summary_report"]

MetricSlot = tuple[str | None, str]  # (stage name or None for the run itself, metric key)


def _values_by_run(
    metrics: Sequence[MetricAcrossRuns], run_count: int
) -> list[dict[MetricSlot, float | int]]:
    """Per run, in order: its latest value of each metric it recorded, by (stage name, key)."""
    return [
        {
            (metric.stage_name, metric.metric_key): value
            for metric in metrics
            if (value := metric.values[index]) is not None
        }
        for index in range(run_count)
    ]


def _sample_metric_rows(
    comparison: MultiRunComparison | None, labels: Sequence[str]
) -> list[tuple[Cell, ...]]:
    """Per metric recorded inside samples (evaluation stages first), a row per run that has it: its
    sample count and statistics."""
    if comparison is None:
        return []
    return [
        (
            label,
            metric.stage_name,
            metric.metric_key,
            aggregate.count,
            aggregate.mean,
            aggregate.p50,
            aggregate.p95,
            aggregate.share,
            aggregate.non_finite_count,
        )
        for metric in comparison.sample_metrics
        for label, aggregate in zip(labels, metric.aggregates, strict=True)
        if aggregate is not None
    ]


def build_project_summary_report(db: StoreDatabase, project: str) -> ReportDocument:
    """A project's history: Project, Runs, Results (each evaluation metric's highest and lowest run),
    Sample Metrics (when a run recorded metrics inside samples), Deployments, Diagnostics; runs in
    start order."""
    with consistent_read(db):
        project_ref = resolve_project(db, project)
        runs = list_runs(db, project_ref, include_archived=True)  # its whole history
        comparison = compare_multiple_runs(db, [run.run_id for run in runs]) if runs else None
        metrics = () if comparison is None else comparison.metrics
        diagnoses = [diagnose_run(db, run.run_id) for run in runs]
        deployments = list_deployments(db, project_ref)
    values_by_run = _values_by_run(metrics, len(runs))
    name = project_ref.partition(":")[2]
    labels = run_labels(runs)
    statuses = Counter(run.status for run in runs)
    evaluation = [
        (metric.stage_name, metric.metric_key)
        for metric in metrics
        if metric.stage_name in EVALUATION_STAGE_NAMES
    ]
    shown = evaluation[:4]  # the Runs table stays readable; every result is in the Results section
    run_rows = [
        (
            label,
            run.status,
            run.started_at,
            duration_s(run.started_at, run.ended_at),
            run.dataset_ref,
            *(values.get(slot) for slot in shown),
            issue_counts(diagnosis.issues),
        )
        for label, run, diagnosis, values in zip(labels, runs, diagnoses, values_by_run, strict=True)
    ]
    result_rows: list[tuple[Cell, ...]] = []
    charts: list[ReportChart] = []
    for slot in evaluation:
        scored = [
            (values[slot], label)
            for label, values in zip(labels, values_by_run, strict=True)
            if slot in values
        ]
        # A NaN compares with nothing and an infinity is no result: both are left out of the extremes
        # (the Runs table still shows them as nan / inf). `x - x` is 0 for ints and finite floats only.
        finite = [pair for pair in scored if pair[0] - pair[0] == 0]
        if finite:
            highest = max(finite, key=lambda pair: pair[0])
            lowest = min(finite, key=lambda pair: pair[0])
            result_rows.append((slot[0], slot[1], len(scored), highest[1], highest[0], lowest[1], lowest[0]))
        else:
            result_rows.append((slot[0], slot[1], len(scored), None, None, None, None))
        if len(charts) < CHART_LIMIT and len(scored) > 1:
            charts.append(
                across_runs_chart(slot[0], slot[1], labels, [values.get(slot) for values in values_by_run])
            )
    sample_rows = _sample_metric_rows(comparison, labels)
    sample_sections = (
        [
            ReportSection(
                "Sample Metrics",
                (
                    "Metrics recorded inside samples: each run's statistics over its samples (NaN and "
                    "infinite values counted apart, as non_finite).",
                ),
                ReportTable(
                    ("run", "stage", "metric", "samples", "mean", "p50", "p95", "share", "non_finite"),
                    sample_rows,
                ),
            )
        ]
        if sample_rows
        else []
    )
    deployment_rows = [
        (
            deployment.name,
            deployment.status,
            deployment.run_id,
            deployment.artifact_ref,
            deployment.started_at,
        )
        for deployment in deployments
    ]
    issue_rows = []
    for label, diagnosis in zip(labels, diagnoses, strict=True):
        severities = Counter(issue.severity for issue in diagnosis.issues)
        if severities:
            issue_rows.append((label, severities.get("error", 0), severities.get("warning", 0)))
    status_text = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())) or "no runs"
    return ReportDocument(
        f"Project Summary: {name}",
        [
            ReportSection(
                "Project",
                (f"Project {name} has {len(runs)} runs ({status_text}) and {len(deployments)} deployments.",),
                ReportTable(
                    ("field", "value"),
                    [
                        ("project", project_ref),
                        ("runs", len(runs)),
                        ("first run started", runs[0].started_at if runs else None),
                        ("last run started", runs[-1].started_at if runs else None),
                        ("deployments", len(deployments)),
                    ],
                ),
            ),
            ReportSection(
                "Runs",
                () if runs else ("The project has no runs yet.",),
                ReportTable(
                    (
                        "run",
                        "status",
                        "started_at",
                        "duration_s",
                        "dataset_ref",
                        *(f"{stage}/{key}" for stage, key in shown),
                        "issues",
                    ),
                    run_rows,
                ),
            ),
            ReportSection(
                "Results",
                ("Each evaluation metric's highest and lowest latest value across the runs.",)
                if result_rows
                else ("No run recorded a metric in an evaluation stage.",),
                ReportTable(
                    ("stage", "metric", "runs", "highest_run", "highest", "lowest_run", "lowest"), result_rows
                ),
                charts,
            ),
            *sample_sections,
            ReportSection(
                "Deployments",
                () if deployment_rows else ("The project has no deployments.",),
                ReportTable(("deployment", "status", "run", "artifact_ref", "started_at"), deployment_rows),
            ),
            ReportSection(
                "Diagnostics",
                ("Runs with issues; `contexta diagnose RUN` explains each.",)
                if issue_rows
                else ("No run has an issue.",),
                ReportTable(("run", "errors", "warnings"), issue_rows),
            ),
        ],
    )
