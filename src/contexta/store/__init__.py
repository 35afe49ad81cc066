"""The canonical local store: an embedded SQLite database (WAL) that live capture writes into.

Capture writes through `StoreIngest` (one `IngestBatch` per transaction: scopes, record documents,
metric columns, artifact manifests); the repositories and the query package read it.
"""

from contexta.store._artifacts import ArtifactStore
from contexta.store._database import StoreDatabase
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
from contexta.store._metric_chunks import ChunkNaming, SeriesIdentity, SeriesPoints
from contexta.store._rebuild import RebuiltStore, rebuild_database
from contexta.store._records import AppendResult, RecordStore, RejectedRecord

__all__ = [
    "AppendResult",
    "ArtifactStore",
    "BatchRepository",
    "ChunkNaming",
    "DeploymentRepository",
    "EnvironmentRepository",
    "IngestBatch",
    "MetadataStore",
    "ProjectRepository",
    "RebuiltStore",
    "RecordStore",
    "RejectedRecord",
    "RelationRepository",
    "RunRepository",
    "SampleRepository",
    "SeriesIdentity",
    "SeriesPoints",
    "StageRepository",
    "StoreDatabase",
    "StoreIngest",
    "rebuild_database",
]
