"""The metadata store of the seeds: one repository per subject, with `put_*` / `get_*` / `list_*`.

`put_*` upserts a validated contract model and refuses one whose parent is not stored (naming the
missing parent), so hand-written history has the same shape as captured history.
"""

from __future__ import annotations

import sqlite3
from typing import Any, TypeVar

from contexta.contract._artifacts import ArtifactManifest
from contexta.contract._context import (
    BatchExecution,
    DeploymentExecution,
    Project,
    Run,
    SampleObservation,
    StageExecution,
)
from contexta.contract._environment import EnvironmentSnapshot, LineageEdge
from contexta.contract._model import ContractModel
from contexta.errors import NotFoundError, ValidationError
from contexta.store._database import StoreDatabase
from contexta.store._tables import TABLES, Table

__all__ = [
    "BatchRepository",
    "DeploymentRepository",
    "EnvironmentRepository",
    "MetadataStore",
    "ProjectRepository",
    "RelationRepository",
    "RunRepository",
    "SampleRepository",
    "StageRepository",
]

_ModelT = TypeVar("_ModelT", bound=ContractModel)

_NOUNS = {
    "projects": "project", "runs": "run", "stages": "stage", "batches": "batch", "samples": "sample",
    "deployments": "deployment", "environments": "environment", "relations": "relation",
}  # fmt: skip
_PARENT_TABLES = {"project_ref": "projects", "run_ref": "runs", "stage_ref": "stages", "batch_ref": "batches"}


def require_parent(connection: sqlite3.Connection, what: str, ref: str | None) -> None:
    """Raise NotFoundError naming `ref` when the parent it refers to is not stored."""
    if ref is None:
        return
    table = _PARENT_TABLES[what]
    key = TABLES[table].key[0]
    if connection.execute(f"SELECT 1 FROM {table} WHERE {key} = ?", (ref,)).fetchone() is None:
        noun = what.removesuffix("_ref")
        raise NotFoundError(
            f"{noun} {ref} is not in the store; put the {noun} first",
            code=f"{noun}_not_found",
            details={"ref": ref},
        )


class _Repository:
    table_name: str

    def __init__(self, database: StoreDatabase):
        self._database = database

    @property
    def _table(self) -> Table:
        return TABLES[self.table_name]

    def _check(self, model: Any, model_type: type[ContractModel]) -> None:
        if not isinstance(model, model_type):
            raise ValidationError(
                f"expected a {model_type.__name__}, got {type(model).__name__}", code="model_type_invalid"
            )

    def _put(self, model: ContractModel, parents: dict[str, str | None]) -> None:
        with self._database.transaction() as connection:
            for what, ref in parents.items():
                require_parent(connection, what, ref)
            self._table.upsert(connection, model.to_dict())

    def _get(self, ref: str, model_type: type[_ModelT]) -> _ModelT:
        table = self._table
        with self._database.read() as connection:
            row = connection.execute(
                f"SELECT {table.column_list} FROM {table.name} WHERE {table.key[0]} = ?", (ref,)
            ).fetchone()
        if row is None:
            noun = _NOUNS[table.name]
            raise NotFoundError(
                f"no {noun} {ref} in the store", code=f"{noun}_not_found", details={"ref": ref}
            )
        model: _ModelT = table.model_from_row(row)
        return model

    def _list(self, where: str = "", parameters: tuple[Any, ...] = (), order: str = "rowid") -> list[Any]:
        table = self._table
        with self._database.read() as connection:
            rows = connection.execute(
                f"SELECT {table.column_list} FROM {table.name} {where} ORDER BY {order}", parameters
            ).fetchall()
        return [table.model_from_row(row) for row in rows]


class ProjectRepository(_Repository):
    table_name = "projects"

    def put_project(self, project: Project) -> None:
        self._check(project, Project)
        self._put(project, {})

    def get_project(self, project_ref: str) -> Project:
        return self._get(project_ref, Project)

    def list_projects(self) -> list[Project]:
        return self._list(order="created_at, rowid")


class RunRepository(_Repository):
    table_name = "runs"

    def put_run(self, run: Run) -> None:
        self._check(run, Run)
        self._put(run, {"project_ref": run.project_ref})

    def get_run(self, run_ref: str) -> Run:
        return self._get(run_ref, Run)

    def list_runs(self, project_ref: str | None = None) -> list[Run]:
        if project_ref is None:
            return self._list(order="started_key, rowid")
        return self._list("WHERE project_ref = ?", (project_ref,), "started_key, rowid")


class StageRepository(_Repository):
    table_name = "stages"

    def put_stage_execution(self, stage: StageExecution) -> None:
        self._check(stage, StageExecution)
        self._put(stage, {"run_ref": stage.run_ref})

    def get_stage_execution(self, stage_ref: str) -> StageExecution:
        return self._get(stage_ref, StageExecution)

    def list_stage_executions(self, run_ref: str) -> list[StageExecution]:
        return self._list("WHERE run_ref = ?", (run_ref,), "coalesce(order_index, 1e18), started_at, rowid")


class BatchRepository(_Repository):
    table_name = "batches"

    def put_batch_execution(self, batch: BatchExecution) -> None:
        self._check(batch, BatchExecution)
        self._put(batch, {"run_ref": batch.run_ref, "stage_ref": batch.stage_execution_ref})

    def get_batch_execution(self, batch_ref: str) -> BatchExecution:
        return self._get(batch_ref, BatchExecution)

    def list_batch_executions(self, run_ref: str, stage_ref: str | None = None) -> list[BatchExecution]:
        order = "coalesce(order_index, 1e18), started_at, rowid"
        if stage_ref is None:
            return self._list("WHERE run_ref = ?", (run_ref,), order)
        return self._list("WHERE run_ref = ? AND stage_ref = ?", (run_ref, stage_ref), order)


class SampleRepository(_Repository):
    table_name = "samples"

    def put_sample_observation(self, sample: SampleObservation) -> None:
        self._check(sample, SampleObservation)
        self._put(
            sample,
            {
                "run_ref": sample.run_ref,
                "stage_ref": sample.stage_execution_ref,
                "batch_ref": sample.batch_execution_ref,
            },
        )

    def get_sample_observation(self, sample_ref: str) -> SampleObservation:
        return self._get(sample_ref, SampleObservation)

    def list_sample_observations(self, run_ref: str) -> list[SampleObservation]:
        return self._list("WHERE run_ref = ?", (run_ref,), "observed_at, rowid")


class DeploymentRepository(_Repository):
    table_name = "deployments"

    def put_deployment_execution(self, deployment: DeploymentExecution) -> None:
        self._check(deployment, DeploymentExecution)
        self._put(deployment, {"project_ref": deployment.project_ref, "run_ref": deployment.run_ref})

    def get_deployment_execution(self, deployment_ref: str) -> DeploymentExecution:
        return self._get(deployment_ref, DeploymentExecution)

    def list_deployment_executions(self, project_ref: str | None = None) -> list[DeploymentExecution]:
        if project_ref is None:
            return self._list(order="started_key, rowid")
        return self._list("WHERE project_ref = ?", (project_ref,), "started_key, rowid")


class EnvironmentRepository(_Repository):
    table_name = "environments"

    def put_environment_snapshot(self, snapshot: EnvironmentSnapshot) -> None:
        self._check(snapshot, EnvironmentSnapshot)
        self._put(snapshot, {"run_ref": snapshot.run_ref})

    def get_environment_snapshot(self, run_ref: str) -> EnvironmentSnapshot:
        return self._get(run_ref, EnvironmentSnapshot)


class RelationRepository(_Repository):
    table_name = "relations"

    def put_relation(self, edge: LineageEdge) -> None:
        self._check(edge, LineageEdge)
        self._put(edge, {})

    def list_relations(self, ref: str) -> list[LineageEdge]:
        """Edges that start or end at `ref`."""
        return self._list("WHERE source_ref = ? OR target_ref = ?", (ref, ref), "recorded_at, rowid")


class MetadataStore:
    """`ctx.metadata_store`: repositories over the workspace's canonical store."""

    def __init__(self, database: StoreDatabase):
        self._database = database
        self.projects = ProjectRepository(database)
        self.runs = RunRepository(database)
        self.stages = StageRepository(database)
        self.batches = BatchRepository(database)
        self.samples = SampleRepository(database)
        self.deployments = DeploymentRepository(database)
        self.environments = EnvironmentRepository(database)
        self.relations = RelationRepository(database)

    @property
    def path(self) -> str:
        return str(self._database.path)

    def close(self) -> None:
        """Release this thread's connection; later queries reopen the store on their own."""
        self._database.close()


def manifest_from_row(row: tuple[Any, ...]) -> ArtifactManifest:
    manifest: ArtifactManifest = TABLES["artifacts"].model_from_row(row)
    return manifest
