"""The snapshot report: one run in full, read through `contexta.query` in one consistent view and laid
out as the sections SPEC §9 fixes (Run Summary, Stages, Artifacts, Batches, Deployments, Samples,
Diagnostics, Completeness Notes).

`contexta run show` prints this same document in a terminal layout (`cli/_run_show.py`), so what a run
shows is decided here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contexta.query import (
    ArtifactRecord,
    BatchRecord,
    DeploymentRecord,
    DiagnosticsResult,
    EnvironmentRecord,
    MetricSummary,
    RunRecord,
    SampleRecord,
    SampleTable,
    StageRecord,
    consistent_read,
    diagnose_run,
    get_environment,
    get_latest_metrics,
    get_metric_summaries,
    get_record_counts,
    get_run,
    get_sample_table,
    list_artifacts,
    list_batches,
    list_deployments,
    list_samples,
    list_stages,
)
from contexta.reports._cells import Cell
from contexta.reports._charts import batch_charts, stage_charts
from contexta.reports._document import ReportDocument
from contexta.reports._sample_wording import aggregate_text
from contexta.reports._sections import ReportChart, ReportSection, ReportTable
from contexta.reports._wording import duration_s, ending_text, issue_counts, mapping_text, number_text
from contexta.store import StoreDatabase

__all__ = ["build_snapshot_report"]

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


@dataclass(frozen=True, slots=True)
class _RunContents:
    """Everything the snapshot report shows of one run, as the queries answered it."""

    run: RunRecord
    stages: list[StageRecord]
    artifacts: list[ArtifactRecord]
    batches: list[BatchRecord]
    deployments: list[DeploymentRecord]
    samples: list[SampleRecord]
    environment: EnvironmentRecord | None
    record_counts: dict[str, int]
    metrics: list[MetricSummary]  # per stage: latest values outside samples, per-sample statistics
    sample_table: SampleTable
    diagnosis: DiagnosticsResult
    stage_charts: list[ReportChart]
    undrawn_charts: int
    batch_charts: list[ReportChart]


def _read(db: StoreDatabase, run_id: str, project: str | None) -> _RunContents:
    with consistent_read(db):
        run = get_run(db, run_id, project=project)
        run_id = run.run_id  # names this execution, whatever `run_id` was (a name, `@n`, ...)
        stages = list_stages(db, run_id)
        batches = list_batches(db, run_id)
        charts, undrawn = stage_charts(db, run_id, stages, get_latest_metrics(db, run_id))
        return _RunContents(
            run=run,
            stages=stages,
            artifacts=list_artifacts(db, run_id),
            batches=batches,
            deployments=list_deployments(db, run_id=run_id),
            samples=list_samples(db, run_id),
            environment=get_environment(db, run_id),
            record_counts=get_record_counts(db, run_id),
            metrics=get_metric_summaries(db, run_id),
            sample_table=get_sample_table(db, run_id),
            diagnosis=diagnose_run(db, run_id),
            stage_charts=charts,
            undrawn_charts=undrawn,
            batch_charts=batch_charts(batches, get_latest_metrics(db, run_id, per="scope")),
        )


def _metrics_text(metrics: Sequence[MetricSummary], stage_id: str | None) -> str | None:
    """`key=latest, ...` of the metrics captured in a stage (None: on the run) outside samples."""
    parts = [
        f"{metric.metric_key}={number_text(metric.latest)}"
        for metric in metrics
        if metric.stage_id == stage_id and metric.latest is not None
    ]
    return ", ".join(parts) or None


def _sample_metrics_text(metrics: Sequence[MetricSummary], stage_id: str) -> str | None:
    """The statistics of each metric recorded inside the stage's samples, `; `-separated."""
    parts = [
        aggregate_text(metric.samples)
        for metric in metrics
        if metric.stage_id == stage_id and metric.samples is not None
    ]
    return "; ".join(parts) or None


def _packages_text(packages: Mapping[str, Any] | None) -> str | None:
    if not packages:
        return None
    notable = [f"{name} {packages[name]}" for name in _NOTABLE_PACKAGES if name in packages]
    listed = f": {', '.join(notable)}" if notable else ""
    return f"{len(packages)} installed{listed}"


def _empty_note(rows: list[Any], what: str) -> tuple[str, ...]:
    return () if rows else (f"No {what} were recorded for this run.",)


def _summary_section(contents: _RunContents) -> ReportSection:
    run, environment = contents.run, contents.environment
    records = ", ".join(
        f"{contents.record_counts[record_type]} {name}"
        for record_type, name in _RECORD_TYPE_NAMES.items()
        if contents.record_counts.get(record_type)
    )
    rows: list[tuple[str, Cell]] = [
        ("run", run.run_id),
        ("name", run.name),
        ("project", run.project_name),
        ("execution", f"{run.execution_number}{' (latest)' if run.latest else ''}: {run.execution_id}"),
        ("status", run.status),
        ("ended_because", ending_text(run.end_reason, run.failure)),
        ("traceback", None if not run.failure else run.failure.get("traceback")),
        ("started_at", run.started_at),
        ("ended_at", run.ended_at),
        ("duration_s", duration_s(run.started_at, run.ended_at)),
        ("dataset_ref", run.dataset_ref),
        ("code_revision", run.code_revision),
        ("tags", mapping_text(run.tags)),
        ("metadata", mapping_text(run.metadata)),
        ("config_snapshot", mapping_text(run.config_snapshot)),
        ("records", records or None),
        ("run metrics", _metrics_text(contents.metrics, None)),
        ("python", None if environment is None else environment.python_version),
        ("platform", None if environment is None else environment.platform),
        ("git_revision", None if environment is None else environment.git_revision),
        ("packages", None if environment is None else _packages_text(environment.packages)),
    ]
    paragraph = f"Run {run.name} of project {run.project_name} is {run.status}."
    return ReportSection("Run Summary", (paragraph,), ReportTable(("field", "value"), rows))


def _stages_section(contents: _RunContents) -> ReportSection:
    rows = [
        (
            stage.name,
            stage.status,
            stage.started_at,
            stage.ended_at,
            duration_s(stage.started_at, stage.ended_at),
            stage.order,
            _metrics_text(contents.metrics, stage.stage_id),
            _sample_metrics_text(contents.metrics, stage.stage_id),
            ending_text(stage.end_reason, stage.failure),
        )
        for stage in contents.stages
    ]
    notes = _empty_note(rows, "stages")
    if contents.undrawn_charts:
        notes += (f"{contents.undrawn_charts} more metric series are not drawn; see get_metric_series().",)
    columns = (
        "stage",
        "status",
        "started_at",
        "ended_at",
        "duration_s",
        "order",
        "metrics",
        "sample_metrics",
        "ended_because",
    )
    return ReportSection("Stages", notes, ReportTable(columns, rows), contents.stage_charts)


def _artifacts_section(contents: _RunContents, stage_names: Mapping[str, str]) -> ReportSection:
    rows = [
        (
            artifact.artifact_ref,
            artifact.kind,
            stage_names.get(artifact.stage_id or ""),
            artifact.binding_status,
            artifact.size_bytes,
            artifact.hash_value,
            artifact.location,
        )
        for artifact in contents.artifacts
    ]
    columns = ("artifact", "kind", "stage", "binding_status", "size_bytes", "blake3", "location")
    return ReportSection("Artifacts", _empty_note(rows, "artifacts"), ReportTable(columns, rows))


def _batches_section(contents: _RunContents, stage_names: Mapping[str, str]) -> ReportSection:
    rows = [
        (
            batch.name,
            stage_names.get(batch.stage_id or "", batch.stage_id),
            batch.status,
            batch.started_at,
            batch.ended_at,
            batch.order,
            ending_text(batch.end_reason, batch.failure),
        )
        for batch in contents.batches
    ]
    columns = ("batch", "stage", "status", "started_at", "ended_at", "order", "ended_because")
    return ReportSection(
        "Batches", _empty_note(rows, "batches"), ReportTable(columns, rows), contents.batch_charts
    )


def _deployments_section(contents: _RunContents) -> ReportSection:
    rows = [
        (
            deployment.name,
            deployment.status,
            deployment.artifact_ref,
            deployment.started_at,
            deployment.ended_at,
        )
        for deployment in contents.deployments
    ]
    columns = ("deployment", "status", "artifact_ref", "started_at", "ended_at")
    return ReportSection("Deployments", _empty_note(rows, "deployments"), ReportTable(columns, rows))


def _samples_section(contents: _RunContents) -> ReportSection:
    """Every sample with its status, why it ended and its metrics (a `metrics.<key>` column each),
    the failed ones first; a paragraph per stage counts its samples and failures and gives the
    statistics of its per-sample metrics."""
    table = contents.sample_table
    failures = {sample.sample_id: sample.failure for sample in contents.samples}
    ordered = sorted(table.rows, key=lambda row: not row.failed)  # stable: observed order within each
    rows = [
        (
            row.name,
            row.stage_name,
            row.batch_name,
            row.status,
            ending_text(row.end_reason, failures.get(row.sample_id)),
            row.observed_at,
            *(row.metrics.get(key) for key in table.metric_keys),
        )
        for row in ordered
    ]
    columns = (
        "sample",
        "stage",
        "batch",
        "status",
        "ended_because",
        "observed_at",
        *(f"metrics.{key}" for key in table.metric_keys),
    )
    paragraphs: list[str] = []
    for stage in contents.stages:
        in_stage = [row for row in table.rows if row.stage_name == stage.name]
        if not in_stage:
            continue
        failed = sum(1 for row in in_stage if row.failed)
        statistics = _sample_metrics_text(contents.metrics, stage.stage_id)
        paragraphs.append(
            f"Stage {stage.name}: {len(in_stage)} samples, {failed} failed"
            + ("" if statistics is None else f"; {statistics}")
            + "."
        )
    if table.failed_count:
        paragraphs.append(f"{table.failed_count} failed samples are listed first.")
    return ReportSection(
        "Samples", tuple(paragraphs) or _empty_note(rows, "samples"), ReportTable(columns, rows)
    )


def _diagnostics_section(contents: _RunContents) -> ReportSection:
    issues = contents.diagnosis.issues
    rows = [(issue.severity, issue.code, issue.subject_ref, issue.summary) for issue in issues]
    return ReportSection(
        "Diagnostics",
        (f"Issues: {issue_counts(issues)}.",),
        ReportTable(("severity", "code", "subject", "summary"), rows),
    )


def _completeness_section(contents: _RunContents) -> ReportSection:
    notes = contents.diagnosis.completeness_notes
    return ReportSection(
        "Completeness Notes",
        notes or ("Nothing is missing: the run, its stages and its batches are closed.",),
    )


def build_snapshot_report(db: StoreDatabase, run_id: str, *, project: str | None = None) -> ReportDocument:
    """One run as a report: Run Summary, Stages, Artifacts, Batches, Deployments, Samples, Diagnostics,
    Completeness Notes (in that order)."""
    contents = _read(db, run_id, project)
    stage_names = {stage.stage_id: stage.name for stage in contents.stages}
    return ReportDocument(
        f"Run Snapshot: {contents.run.run_id}",
        [
            _summary_section(contents),
            _stages_section(contents),
            _artifacts_section(contents, stage_names),
            _batches_section(contents, stage_names),
            _deployments_section(contents),
            _samples_section(contents),
            _diagnostics_section(contents),
            _completeness_section(contents),
        ],
    )
