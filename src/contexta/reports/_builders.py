"""Report builders: read the store once, consistently, and lay the answer out as a ReportDocument."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from contexta.query._compare import metric_slots_in_order, named_metric_values
from contexta.query._completeness import RunFacts, completeness_notes, gather_facts
from contexta.query._diagnose import issues_of
from contexta.query._fetch import (
    consistent_read,
    fetch_record_counts,
    fetch_samples,
    instant,
    latest_metric_values,
)
from contexta.query._models import DiagnosticIssue, EnvironmentRecord, RunRecord
from contexta.query._resolve import check_run_ids, find_run, find_runs
from contexta.reports._cells import Cell
from contexta.reports._charts import CHART_LIMIT, across_runs_chart, batch_charts, stage_charts
from contexta.reports._document import ReportDocument
from contexta.reports._sections import ReportSection, ReportTable
from contexta.store._database import StoreDatabase

__all__ = ["build_multi_run_report", "build_snapshot_report"]

# Packages worth naming in a run summary; the full list stays in the store (get_environment).
_NOTABLE_PACKAGES = (
    "contexta",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "torch",
    "tensorflow",
    "jax",
    "transformers",
    "xgboost",
    "lightgbm",
    "openai",
)
_RECORD_TYPE_NAMES = {"metric": "metrics", "event": "events", "span": "spans", "degraded": "degraded"}


# -- cells -----------------------------------------------------------------------------------------


def _number(value: float | int) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _mapping_text(mapping: Mapping[str, Any] | None) -> str | None:
    if not mapping:
        return None
    return ", ".join(f"{key}={value}" for key, value in mapping.items())


def _duration_s(started_at: str | None, ended_at: str | None) -> float | None:
    if started_at is None or ended_at is None:
        return None
    return (instant(ended_at) - instant(started_at)).total_seconds()


def _metrics_text(values: Mapping[tuple[str | None, str], float | int], stage_ref: str | None) -> str | None:
    parts = [f"{key}={_number(value)}" for (stage, key), value in values.items() if stage == stage_ref]
    return ", ".join(parts) or None


def _packages_text(packages: Mapping[str, Any] | None) -> str | None:
    if not packages:
        return None
    notable = [f"{name} {packages[name]}" for name in _NOTABLE_PACKAGES if name in packages]
    listed = f": {', '.join(notable)}" if notable else ""
    return f"{len(packages)} installed{listed}"


def _issue_counts(issues: Iterable[DiagnosticIssue]) -> str:
    counts: dict[str, int] = {}
    for issue in issues:
        counts[issue.severity] = counts.get(issue.severity, 0) + 1
    parts = [
        f"{counts[severity]} {severity}{'' if counts[severity] == 1 else 's'}"
        for severity in ("error", "warning", "info")
        if severity in counts
    ]
    return ", ".join(parts) or "none"


# -- snapshot report -------------------------------------------------------------------------------


def _summary_section(
    run: RunRecord,
    environment: EnvironmentRecord | None,
    record_counts: Mapping[str, int],
    metric_values: Mapping[tuple[str | None, str], float | int],
) -> ReportSection:
    records = ", ".join(
        f"{record_counts[record_type]} {name}"
        for record_type, name in _RECORD_TYPE_NAMES.items()
        if record_counts.get(record_type)
    )
    rows: list[tuple[str, Cell]] = [
        ("run", run.run_id),
        ("name", run.name),
        ("project", run.project_name),
        ("execution", f"{run.execution_number}{' (latest)' if run.latest else ''}: {run.execution_id}"),
        ("status", run.status),
        ("ended_because", _ending_text(run.end_reason, run.failure)),
        ("traceback", None if not run.failure else run.failure.get("traceback")),
        ("started_at", run.started_at),
        ("ended_at", run.ended_at),
        ("duration_s", _duration_s(run.started_at, run.ended_at)),
        ("dataset_ref", run.dataset_ref),
        ("code_revision", run.code_revision),
        ("tags", _mapping_text(run.tags)),
        ("metadata", _mapping_text(run.metadata)),
        ("config_snapshot", _mapping_text(run.config_snapshot)),
        ("records", records or None),
        ("run metrics", _metrics_text(metric_values, None)),
        ("python", None if environment is None else environment.python_version),
        ("platform", None if environment is None else environment.platform),
        ("git_revision", None if environment is None else environment.git_revision),
        ("packages", None if environment is None else _packages_text(environment.packages)),
    ]
    paragraph = f"Run {run.name} of project {run.project_name} is {run.status}."
    return ReportSection("Run Summary", (paragraph,), ReportTable(("field", "value"), rows))


def _ending_text(end_reason: str | None, failure: Mapping[str, Any] | None) -> str | None:
    """Why a scope ended when it did not simply complete: the reason and the exception, if any."""
    parts = [end_reason] if end_reason else []
    if failure:
        parts.append(f"{failure.get('type')}: {failure.get('message')}")
    return "; ".join(parts) or None


def _empty_note(rows: list[Any], what: str) -> tuple[str, ...]:
    return () if rows else (f"No {what} were recorded for this run.",)


def _snapshot_sections(connection: sqlite3.Connection, facts: RunFacts) -> list[ReportSection]:
    execution = facts.execution_id
    metric_values = latest_metric_values(connection, execution)
    stage_names = {stage.stage_id: stage.name for stage in facts.stages}
    samples = fetch_samples(connection, execution)
    issues = issues_of(facts)
    notes = completeness_notes(facts)

    stage_rows = [
        (
            stage.name,
            stage.status,
            stage.started_at,
            stage.ended_at,
            _duration_s(stage.started_at, stage.ended_at),
            stage.order,
            _metrics_text(metric_values, stage.stage_id),
            _ending_text(stage.end_reason, stage.failure),
        )
        for stage in facts.stages
    ]
    artifact_rows = [
        (
            artifact.artifact_ref,
            artifact.kind,
            stage_names.get(artifact.stage_id or ""),
            artifact.binding_status,
            artifact.size_bytes,
            artifact.hash_value,
            artifact.location,
        )
        for artifact in facts.artifacts
    ]
    batch_rows = [
        (
            batch.name,
            stage_names.get(batch.stage_id or "", batch.stage_id),
            batch.status,
            batch.started_at,
            batch.ended_at,
            batch.order,
            _ending_text(batch.end_reason, batch.failure),
        )
        for batch in facts.batches
    ]
    deployment_rows = [
        (
            deployment.name,
            deployment.status,
            deployment.artifact_ref,
            deployment.started_at,
            deployment.ended_at,
        )
        for deployment in facts.deployments
    ]
    sample_rows = [
        (
            sample.name,
            stage_names.get(sample.stage_id or "", sample.stage_id),
            None if sample.batch_id is None else sample.batch_id.rpartition(".")[2],
            sample.observed_at,
            sample.retention_class,
            sample.redaction_profile,
            sample.status,
            _ending_text(sample.end_reason, sample.failure),
        )
        for sample in samples
    ]
    issue_rows = [(issue.severity, issue.code, issue.subject_ref, issue.summary) for issue in issues]
    series_charts, undrawn = stage_charts(connection, facts)
    stage_notes = _empty_note(stage_rows, "stages")
    if undrawn:
        stage_notes += (f"{undrawn} more metric series are not drawn; see get_metric_series().",)
    return [
        _summary_section(
            facts.run, facts.environment, fetch_record_counts(connection, execution), metric_values
        ),
        ReportSection(
            "Stages",
            stage_notes,
            ReportTable(
                (
                    "stage",
                    "status",
                    "started_at",
                    "ended_at",
                    "duration_s",
                    "order",
                    "metrics",
                    "ended_because",
                ),
                stage_rows,
            ),
            series_charts,
        ),
        ReportSection(
            "Artifacts",
            _empty_note(artifact_rows, "artifacts"),
            ReportTable(
                ("artifact", "kind", "stage", "binding_status", "size_bytes", "blake3", "location"),
                artifact_rows,
            ),
        ),
        ReportSection(
            "Batches",
            _empty_note(batch_rows, "batches"),
            ReportTable(
                ("batch", "stage", "status", "started_at", "ended_at", "order", "ended_because"), batch_rows
            ),
            batch_charts(connection, facts),
        ),
        ReportSection(
            "Deployments",
            _empty_note(deployment_rows, "deployments"),
            ReportTable(("deployment", "status", "artifact_ref", "started_at", "ended_at"), deployment_rows),
        ),
        ReportSection(
            "Samples",
            _empty_note(sample_rows, "samples"),
            ReportTable(
                (
                    "sample",
                    "stage",
                    "batch",
                    "observed_at",
                    "retention_class",
                    "redaction_profile",
                    "status",
                    "ended_because",
                ),
                sample_rows,
            ),
        ),
        ReportSection(
            "Diagnostics",
            (f"Issues: {_issue_counts(issues)}.",),
            ReportTable(("severity", "code", "subject", "summary"), issue_rows),
        ),
        ReportSection(
            "Completeness Notes",
            tuple(notes) or ("Nothing is missing: the run, its stages and its batches are closed.",),
        ),
    ]


def build_snapshot_report(db: StoreDatabase, run_id: str, *, project: str | None = None) -> ReportDocument:
    """One run as a report: Run Summary, Stages, Artifacts, Batches, Deployments, Samples, Diagnostics,
    Completeness Notes (in that order)."""
    with consistent_read(db) as connection:
        facts = gather_facts(connection, find_run(connection, run_id, project))
        sections = _snapshot_sections(connection, facts)
    return ReportDocument(f"Run Snapshot: {facts.run.run_id}", sections)


# -- multi-run report ------------------------------------------------------------------------------


def _run_labels(runs: list[RunRecord]) -> list[str]:
    """Column labels: the run's name, or its full ref when two selected runs share a name."""
    names = [run.name for run in runs]
    return [run.name if names.count(run.name) == 1 else run.run_id for run in runs]


def build_multi_run_report(
    db: StoreDatabase, run_ids: Iterable[str], *, project: str | None = None
) -> ReportDocument:
    """Several runs side by side: titled `Multi Run Report: N runs`, with a table of the runs and a
    table of each metric's latest value per run (evaluation stages first)."""
    check_run_ids(run_ids)
    with consistent_read(db) as connection:
        targets = find_runs(connection, run_ids, project, needed_for="to report on")
        facts = [gather_facts(connection, target) for target in targets]
        values_by_run = [named_metric_values(connection, run_facts) for run_facts in facts]
    runs = [run_facts.run for run_facts in facts]
    labels = _run_labels(runs)
    run_rows = [
        (
            label,
            run.run_id,
            run.status,
            run.started_at,
            run.ended_at,
            run.dataset_ref,
            _issue_counts(issues_of(run_facts)),
        )
        for label, run, run_facts in zip(labels, runs, facts, strict=True)
    ]
    metric_rows = [
        (stage_name, key, *(values.get((stage_name, key)) for values in values_by_run))
        for stage_name, key in metric_slots_in_order(values_by_run)
    ]
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
                    across_runs_chart(row[0], row[1], labels, row[2:])  # type: ignore[arg-type]
                    for row in metric_rows[:CHART_LIMIT]
                    if len(runs) > 1 and sum(value is not None for value in row[2:]) > 1
                ],
            ),
        ],
    )
