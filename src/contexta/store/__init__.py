"""The canonical local store: an embedded SQLite database (WAL) that live capture writes into."""

from contexta.store._artifacts import ArtifactStore
from contexta.store._database import StoreDatabase
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
from contexta.store._records import AppendResult, RecordStore, RejectedRecord
from contexta.store._repair import RepairReport, rebuild_store
from contexta.store._sink import StoreSink

__all__ = [
    "AppendResult",
    "ArtifactStore",
    "BatchRepository",
    "DeploymentRepository",
    "EnvironmentRepository",
    "MetadataStore",
    "ProjectRepository",
    "RecordStore",
    "RejectedRecord",
    "RelationRepository",
    "RepairReport",
    "RunRepository",
    "SampleRepository",
    "StageRepository",
    "StoreDatabase",
    "StoreSink",
    "rebuild_store",
]
