"""The read path: list, resolve, snapshot, diagnose, compare and select over the canonical store.

Every function takes the store first and reads it without writing; reports, the command line and
anything else that reads a workspace build on these names only."""

from contexta.query._aggregations import AGGREGATIONS
from contexta.query._alert_models import ALERT_OPERATORS, AlertReport, AlertResult, AlertRule
from contexta.query._alert_rules import alert_rules_from_mapping, load_alert_rules
from contexta.query._alerts import evaluate_alerts
from contexta.query._compare import compare_multiple_runs, compare_runs
from contexta.query._completeness import EVALUATION_STAGE_NAMES
from contexta.query._diagnose import diagnose_run
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
from contexta.query._resolve import resolve_batch, resolve_project, resolve_run, resolve_stage
from contexta.query._select import select_best_run
from contexta.query._snapshot import get_run_snapshot
from contexta.query._trend_models import (
    ArtifactSize,
    ArtifactSizePoint,
    ArtifactSizeTrend,
    MetricTrend,
    MetricTrendPoint,
    SkippedRun,
    StageDurationPoint,
    StageDurationTrend,
)
from contexta.query._trends import get_artifact_size_trend, get_metric_trend, get_stage_duration_trend

__all__ = [
    "AGGREGATIONS",
    "ALERT_OPERATORS",
    "EVALUATION_STAGE_NAMES",
    "AlertReport",
    "AlertResult",
    "AlertRule",
    "ArtifactChange",
    "ArtifactRecord",
    "ArtifactSize",
    "ArtifactSizePoint",
    "ArtifactSizeTrend",
    "BatchRecord",
    "DeploymentRecord",
    "DiagnosticIssue",
    "DiagnosticsResult",
    "EnvironmentRecord",
    "FieldAcrossRuns",
    "FieldDifference",
    "LatestMetric",
    "MetricAcrossRuns",
    "MetricDelta",
    "MetricPoint",
    "MetricPoints",
    "MetricSeries",
    "MetricTrend",
    "MetricTrendPoint",
    "MultiRunComparison",
    "ProjectRecord",
    "RunComparison",
    "RunRecord",
    "RunSnapshot",
    "SampleRecord",
    "SkippedRun",
    "StageDurationPoint",
    "StageDurationTrend",
    "StageRecord",
    "alert_rules_from_mapping",
    "compare_multiple_runs",
    "compare_runs",
    "consistent_read",
    "diagnose_run",
    "evaluate_alerts",
    "get_artifact_size_trend",
    "get_environment",
    "get_latest_metrics",
    "get_metric_series",
    "get_metric_trend",
    "get_record_counts",
    "get_run",
    "get_run_snapshot",
    "get_stage_duration_trend",
    "list_artifacts",
    "list_batches",
    "list_deployments",
    "list_projects",
    "list_runs",
    "list_samples",
    "list_stages",
    "load_alert_rules",
    "resolve_batch",
    "resolve_project",
    "resolve_run",
    "resolve_stage",
    "select_best_run",
]
