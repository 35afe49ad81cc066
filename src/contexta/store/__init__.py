"""The canonical local store: an embedded SQLite database (WAL) that live capture writes into.

Capture writes through `StoreIngest` (one `IngestBatch` per transaction: scopes, record documents,
metric columns, artifact manifests); the repositories and the query package read it, the query
package through the read helpers exported here (series selection and columns, record views,
executions by number), so no other package reaches into the store's modules.
"""

import importlib
from typing import TYPE_CHECKING, Any

from contexta.store._artifacts import ArtifactStore, copy_verified
from contexta.store._backend import open_store_database
from contexta.store._chunk_codec import LazyColumn
from contexta.store._chunk_summary import STEPS_NONE, STEPS_SORTED, TIMES_KNOWN, TIMES_SORTED
from contexta.store._database import StoreDatabase
from contexta.store._executions import (
    execution_by_number,
    holds_name_of_before,
    latest_execution_id,
    latest_execution_start,
)
from contexta.store._ingest import IngestBatch, StoreIngest
from contexta.store._metadata import (
    BatchRepository,
    DeploymentRepository,
    EnvironmentRepository,
    MetadataStore,
    ProjectRepository,
    RelationRepository,
    RunRepository,
    SampleRepository,
    StageRepository,
)
from contexta.store._metric_chunks import NO_STEP, ChunkNaming, SeriesIdentity, SeriesPoints, default_subject
from contexta.store._metric_points import MetricColumns, SeriesRow, load_columns, select_series
from contexta.store._rebuild import RebuiltStore, rebuild_database
from contexta.store._records import AppendResult, RecordStore, RecordView, RejectedRecord, record_view
from contexta.store._recovery import mark_interrupted_runs
from contexta.store._rows import loads_or_none
from contexta.store._run_changes import AppliedChange, DeletedRun, capturing_process, change_runs
from contexta.store._run_journal import RunAction, RunChange, TagValue, journal_path, read_journal
from contexta.store._series_chunks import Column, StoredChunk, stored_chunks
from contexta.store._sql import is_postgres
from contexta.store._store_file import require_store_file

if TYPE_CHECKING:
    from contexta.store._reclaim import (
        CompactReport,
        ExecutionSummary,
        ReclaimedExecution,
        StoreUsage,
        any_owner_alive,
        artifact_copies,
        compact_store,
        list_executions,
        reclaim_executions,
        store_file_bytes,
        store_usage,
    )
    from contexta.store._s3_artifacts import S3ArtifactBackend, S3ObjectCheck

# What `contexta du` and `contexta gc` use, imported when first asked for: every `import contexta`
# would pay a few milliseconds for them otherwise.
_RECLAIM = frozenset(
    (
        "CompactReport",
        "ExecutionSummary",
        "ReclaimedExecution",
        "StoreUsage",
        "any_owner_alive",
        "artifact_copies",
        "compact_store",
        "copy_verified",
        "list_executions",
        "reclaim_executions",
        "store_file_bytes",
        "store_usage",
    )
)


# Artifact copies in S3 (`artifacts.url`): imported by the first workspace that has one.
_S3 = frozenset(("S3ArtifactBackend", "S3ObjectCheck"))


def __getattr__(name: str) -> Any:
    if name in _RECLAIM:
        return getattr(importlib.import_module("contexta.store._reclaim"), name)
    if name in _S3:
        return getattr(importlib.import_module("contexta.store._s3_artifacts"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "NO_STEP",
    "STEPS_NONE",
    "STEPS_SORTED",
    "TIMES_KNOWN",
    "TIMES_SORTED",
    "AppendResult",
    "AppliedChange",
    "ArtifactStore",
    "BatchRepository",
    "ChunkNaming",
    "Column",
    "CompactReport",
    "DeletedRun",
    "DeploymentRepository",
    "EnvironmentRepository",
    "ExecutionSummary",
    "IngestBatch",
    "LazyColumn",
    "MetadataStore",
    "MetricColumns",
    "ProjectRepository",
    "RebuiltStore",
    "ReclaimedExecution",
    "RecordStore",
    "RecordView",
    "RejectedRecord",
    "RelationRepository",
    "RunAction",
    "RunChange",
    "RunRepository",
    "S3ArtifactBackend",
    "S3ObjectCheck",
    "SampleRepository",
    "SeriesIdentity",
    "SeriesPoints",
    "SeriesRow",
    "StageRepository",
    "StoreDatabase",
    "StoreIngest",
    "StoreUsage",
    "StoredChunk",
    "TagValue",
    "any_owner_alive",
    "artifact_copies",
    "capturing_process",
    "change_runs",
    "compact_store",
    "copy_verified",
    "default_subject",
    "execution_by_number",
    "holds_name_of_before",
    "is_postgres",
    "journal_path",
    "latest_execution_id",
    "latest_execution_start",
    "list_executions",
    "load_columns",
    "loads_or_none",
    "mark_interrupted_runs",
    "open_store_database",
    "read_journal",
    "rebuild_database",
    "reclaim_executions",
    "record_view",
    "require_store_file",
    "select_series",
    "store_file_bytes",
    "store_usage",
    "stored_chunks",
]
