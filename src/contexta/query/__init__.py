"""The read path: list, resolve, snapshot, diagnose, compare and select over the canonical store.

Every function takes the store first and reads it without writing; reports, the command line and
anything else that reads a workspace build on these names only."""

from contexta.query._compare import compare_multiple_runs, compare_runs
from contexta.query._completeness import EVALUATION_STAGE_NAMES
from contexta.query._diagnose import diagnose_run
from contexta.query._environment_diff import compare_environments
from contexta.query._lineage import get_artifact_origin, traverse_lineage
from contexta.query._lineage_models import (
    ArtifactOrigin,
    AuditCheck,
    EnvironmentComparison,
    LineageGraph,
    LineageLink,
    LineageNode,
    PackageChange,
    ReproducibilityAudit,
)
from contexta.query._lists import (
    get_environment,
    get_latest_metrics,
    get_metric_series,
    get_record_counts,
    get_run,
    list_artifacts,
    list_batches,
    list_deployments,
    list_projects,
    list_runs,
    list_samples,
    list_stages,
)
from contexta.query._models import (
    ArtifactChange,
    ArtifactRecord,
    BatchRecord,
    DeploymentRecord,
    DiagnosticIssue,
    DiagnosticsResult,
    EnvironmentRecord,
    FieldAcrossRuns,
    FieldDifference,
    LatestMetric,
    MetricAcrossRuns,
    MetricDelta,
    MetricPoint,
    MetricPoints,
    MetricSeries,
    MultiRunComparison,
    ProjectRecord,
    RunComparison,
    RunRecord,
    RunSnapshot,
    SampleRecord,
    StageRecord,
)
from contexta.query._reading import consistent_read
from contexta.query._reproducibility import audit_reproducibility
from contexta.query._resolve import resolve_batch, resolve_project, resolve_run, resolve_stage
from contexta.query._select import select_best_run
from contexta.query._snapshot import get_run_snapshot

__all__ = [
    "EVALUATION_STAGE_NAMES",
    "ArtifactChange",
    "ArtifactOrigin",
    "ArtifactRecord",
    "AuditCheck",
    "BatchRecord",
    "DeploymentRecord",
    "DiagnosticIssue",
    "DiagnosticsResult",
    "EnvironmentComparison",
    "EnvironmentRecord",
    "FieldAcrossRuns",
    "FieldDifference",
    "LatestMetric",
    "LineageGraph",
    "LineageLink",
    "LineageNode",
    "MetricAcrossRuns",
    "MetricDelta",
    "MetricPoint",
    "MetricPoints",
    "MetricSeries",
    "MultiRunComparison",
    "PackageChange",
    "ProjectRecord",
    "ReproducibilityAudit",
    "RunComparison",
    "RunRecord",
    "RunSnapshot",
    "SampleRecord",
    "StageRecord",
    "audit_reproducibility",
    "compare_environments",
    "compare_multiple_runs",
    "compare_runs",
    "consistent_read",
    "diagnose_run",
    "get_artifact_origin",
    "get_environment",
    "get_latest_metrics",
    "get_metric_series",
    "get_record_counts",
    "get_run",
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
    "traverse_lineage",
]
