"""The read path: list, resolve, snapshot, diagnose, compare and select over the canonical store.

Every function takes the store first and reads it without writing; reports, the command line and
anything else that reads a workspace build on these names only."""

from contexta.query._compare import compare_multiple_runs, compare_runs
from contexta.query._completeness import EVALUATION_STAGE_NAMES
from contexta.query._diagnose import diagnose_run
from contexta.query._direction import infer_higher_is_better
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
from contexta.query._metric_summaries import get_metric_summaries
from contexta.query._models import (
    ArtifactChange,
    ArtifactRecord,
    BatchRecord,
    BestRun,
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
    MetricSummary,
    MultiRunComparison,
    ProjectRecord,
    RunComparison,
    RunRecord,
    RunSnapshot,
    SampleMetricAcrossRuns,
    SampleMetricDelta,
    SampleRecord,
    StageRecord,
)
from contexta.query._reading import consistent_read
from contexta.query._resolve import resolve_batch, resolve_project, resolve_run, resolve_stage
from contexta.query._sample_stats import SAMPLE_AGGREGATES, SampleAggregate
from contexta.query._sample_table import SampleRow, SampleTable
from contexta.query._samples import get_sample_table
from contexta.query._select import BEST_RUN_AGGREGATES, find_best_run, select_best_run
from contexta.query._snapshot import get_run_snapshot

__all__ = [
    "BEST_RUN_AGGREGATES",
    "EVALUATION_STAGE_NAMES",
    "SAMPLE_AGGREGATES",
    "ArtifactChange",
    "ArtifactRecord",
    "BatchRecord",
    "BestRun",
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
    "MetricSummary",
    "MultiRunComparison",
    "ProjectRecord",
    "RunComparison",
    "RunRecord",
    "RunSnapshot",
    "SampleAggregate",
    "SampleMetricAcrossRuns",
    "SampleMetricDelta",
    "SampleRecord",
    "SampleRow",
    "SampleTable",
    "StageRecord",
    "compare_multiple_runs",
    "compare_runs",
    "consistent_read",
    "diagnose_run",
    "find_best_run",
    "get_environment",
    "get_latest_metrics",
    "get_metric_series",
    "get_metric_summaries",
    "get_record_counts",
    "get_run",
    "get_run_snapshot",
    "get_sample_table",
    "infer_higher_is_better",
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
