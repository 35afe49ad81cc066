"""Reports that compare: two runs side by side, and a whole project's history."""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

import orjson

from contexta.contract._non_finite import is_finite_number
from contexta.query._compare import compare_runs, metric_slots_in_order, named_metric_values
from contexta.query._completeness import EVALUATION_STAGE_NAMES, RunFacts, gather_facts
from contexta.query._diagnose import issues_of
from contexta.query._fetch import consistent_read, fetch_deployments, fetch_runs
from contexta.query._models import FieldDifference, RunComparison
from contexta.query._resolve import find_project_ref, find_run
from contexta.reports._builders import _duration_s, _issue_counts, _run_labels
from contexta.reports._cells import Cell
from contexta.reports._charts import CHART_LIMIT, across_runs_chart, chart_points
from contexta.reports._document import ReportDocument
from contexta.reports._sections import ChartSeries, ReportChart, ReportSection, ReportTable
from contexta.store._database import StoreDatabase
from contexta.store._metric_points import load_columns, select_series

__all__ = ["build_project_summary_report", "build_run_report"]


def _cell(value: Any) -> Cell:
    """A value of a run argument or environment field as a report cell (structures as JSON text)."""
    if value is None or isinstance(value, str | int | float):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _difference_rows(differences: tuple[FieldDifference, ...]) -> list[tuple[Cell, ...]]:
    return [(difference.field, _cell(difference.left), _cell(difference.right)) for difference in differences]


def _stage_ref(facts: RunFacts, stage_name: str | None) -> str | None:
    if stage_name is None:
        return None
    return next((stage.stage_id for stage in facts.stages if stage.name == stage_name), "")


def _overlay_charts(
    connection: sqlite3.Connection, comparison: RunComparison, facts: list[RunFacts], labels: list[str]
) -> list[ReportChart]:
    """For each metric both runs recorded more than once: both runs' series on one chart."""
    charts = []
    for delta in comparison.metric_deltas:
        if delta.left is None or delta.right is None:
            continue
        lines = []
        for run_facts, label in zip(facts, labels, strict=True):
            stage_ref = _stage_ref(run_facts, delta.stage_name)
            series = [
                row
                for row in select_series(
                    connection, execution_id=run_facts.execution_id, key=delta.metric_key, stage_ref=stage_ref
                )
                if stage_ref is not None or row.stage_ref is None
            ]
            columns = load_columns(connection, series)
            lines.append((label, columns.step_list(), columns.values))
        if all(len(values) > 1 for _, _, values in lines):
            x_label = "step" if all(None not in steps for _, steps, _ in lines) else "capture order"
            where = "the run" if delta.stage_name is None else f"stage {delta.stage_name}"
            charts.append(
                ReportChart(
                    f"{delta.metric_key} in {where}",
                    x_label,
                    delta.metric_key,
                    [ChartSeries(label, chart_points(steps, values)) for label, steps, values in lines],
                )
            )
        if len(charts) == CHART_LIMIT:
            break
    return charts


def build_run_report(
    db: StoreDatabase, left: str, right: str, *, project: str | None = None
) -> ReportDocument:
    """Two runs side by side: Runs, Metric Deltas (with both runs' series drawn together), Artifacts,
    Arguments, Environment, Diagnostics."""
    comparison = compare_runs(db, left, right, project=project)
    with consistent_read(db) as connection:
        facts = [
            gather_facts(connection, find_run(connection, run))
            for run in (comparison.left_run_id, comparison.right_run_id)
        ]
        labels = _run_labels([run_facts.run for run_facts in facts])
        charts = _overlay_charts(connection, comparison, facts, labels)
    old, new = (run_facts.run for run_facts in facts)
    issue_counts = [_issue_counts(issues_of(run_facts)) for run_facts in facts]
    run_rows: list[tuple[Cell, ...]] = [
        ("run_id", old.run_id, new.run_id),
        ("status", old.status, new.status),
        ("started_at", old.started_at, new.started_at),
        ("ended_at", old.ended_at, new.ended_at),
        ("duration_s", _duration_s(old.started_at, old.ended_at), _duration_s(new.started_at, new.ended_at)),
        ("dataset_ref", old.dataset_ref, new.dataset_ref),
        ("issues", *issue_counts),
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
        for label, run_facts in zip(labels, facts, strict=True)
        for issue in issues_of(run_facts)
    ]
    left_label, right_label = labels
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
                (f"{left_label}: {issue_counts[0]}; {right_label}: {issue_counts[1]}.",),
                ReportTable(("run", "severity", "code", "subject", "summary"), issue_rows),
            ),
        ],
    )


def _evaluation_keys(
    values_by_run: list[dict[tuple[str | None, str], float | int]],
) -> list[tuple[str | None, str]]:
    return [slot for slot in metric_slots_in_order(values_by_run) if slot[0] in EVALUATION_STAGE_NAMES]


def build_project_summary_report(db: StoreDatabase, project: str) -> ReportDocument:
    """A project's history: Project, Runs, Results (each evaluation metric's highest and lowest run),
    Deployments, Diagnostics; runs in start order."""
    with consistent_read(db) as connection:
        project_ref = find_project_ref(connection, project)
        runs = fetch_runs(connection, project_ref=project_ref)
        facts: list[RunFacts] = [gather_facts(connection, find_run(connection, run.run_id)) for run in runs]
        values_by_run = [named_metric_values(connection, run_facts) for run_facts in facts]
        deployments = fetch_deployments(connection, project_ref=project_ref)
    name = project_ref.partition(":")[2]
    labels = _run_labels(runs)
    statuses = Counter(run.status for run in runs)
    evaluation = _evaluation_keys(values_by_run)
    shown = evaluation[:4]  # the Runs table stays readable; every result is in the Results section
    run_rows = [
        (
            label,
            run.status,
            run.started_at,
            _duration_s(run.started_at, run.ended_at),
            run.dataset_ref,
            *(values.get(slot) for slot in shown),
            _issue_counts(issues_of(run_facts)),
        )
        for label, run, run_facts, values in zip(labels, runs, facts, values_by_run, strict=True)
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
        # (the Runs table still shows them as nan / inf).
        finite = [pair for pair in scored if is_finite_number(pair[0])]
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
    for label, run_facts in zip(labels, facts, strict=True):
        severities = Counter(issue.severity for issue in issues_of(run_facts))
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
