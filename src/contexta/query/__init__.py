"""The read path: list, resolve, snapshot, diagnose and select over the canonical store."""

from contexta.query._diagnose import diagnose_run
from contexta.query._lists import (
    get_environment,
    get_metric_series,
    list_artifacts,
    list_batches,
    list_deployments,
    list_projects,
    list_runs,
    list_samples,
    list_stages,
)
from contexta.query._models import (
    ArtifactRecord,
    BatchRecord,
    DeploymentRecord,
    DiagnosticIssue,
    DiagnosticsResult,
    EnvironmentRecord,
    MetricPoint,
    MetricPoints,
    MetricSeries,
    ProjectRecord,
    RunRecord,
    RunSnapshot,
    SampleRecord,
    StageRecord,
)
from contexta.query._resolve import resolve_batch, resolve_project, resolve_run, resolve_stage
from contexta.query._select import select_best_run
from contexta.query._snapshot import get_run_snapshot

__all__ = [
    "ArtifactRecord",
    "BatchRecord",
    "DeploymentRecord",
    "DiagnosticIssue",
    "DiagnosticsResult",
    "EnvironmentRecord",
    "MetricPoint",
    "MetricPoints",
    "MetricSeries",
    "ProjectRecord",
    "RunRecord",
    "RunSnapshot",
    "SampleRecord",
    "StageRecord",
    "diagnose_run",
    "get_environment",
    "get_metric_series",
    "get_run_snapshot",
    "list_artifacts",
    "list_batches",
    "list_deployments",
    "list_projects",
    "list_runs",
    "list_samples",
    "list_stages",
    "resolve_batch",
    "resolve_project",
    "resolve_run",
    "resolve_stage",
    "select_best_run",
]
