"""The metadata store of the seeds: one repository per subject, with `put_*` / `get_*` / `list_*`.

`put_*` upserts a validated contract model and refuses one whose parent is not stored (naming the
missing parent), so hand-written history has the same shape as captured history. A run ref names
the latest execution of the run for `get_*` / `list_*`; earlier executions are read through the
queries (`ctx.list_runs(all_executions=True)`). A run written by hand is the execution of its ref
that started at its `started_at`; a stage, batch, sample, environment or deployment written by hand
belongs to the execution of its run that had started by its own time (else the latest).
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
from contexta.contract._refs import new_execution_id, parse_ref
from contexta.contract._timestamps import instant_key
from contexta.errors import NotFoundError, ValidationError
from contexta.store._database import StoreDatabase
from contexta.store._executions import execution_started_by, latest_execution_id
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


def require_parent(connection: sqlite3.Connection, what: str, ref: str | None) -> None:
    """Raise NotFoundError naming `ref` when the project or run it refers to is not stored."""
    if ref is None:
        return
    table, column = {"project_ref": ("projects", "project_ref"), "run_ref": ("runs", "run_ref")}[what]
    if connection.execute(f"SELECT 1 FROM {table} WHERE {column} = ? LIMIT 1", (ref,)).fetchone() is None:
        noun = what.removesuffix("_ref")
        raise NotFoundError(
            f"{noun} {ref} is not in the store; put the {noun} first",
            code=f"{noun}_not_found",
            details={"ref": ref},
        )


def _execution_at(connection: sqlite3.Connection, run_ref: str, at: str | None) -> str:
    """The execution hand-written history of `run_ref` at time `at` goes to: the one that had started
    by then (history can be written for an earlier execution), else the latest; NotFoundError when
    the run is not stored."""
    require_parent(connection, "run_ref", run_ref)
    execution = None if at is None else execution_started_by(connection, run_ref, at)
    if execution is None:
        execution = latest_execution_id(connection, run_ref)
    assert execution is not None
    return execution


def _require_scope(connection: sqlite3.Connection, table: str, column: str, execution: str, ref: str) -> None:
    """A stage (or batch) a hand-written child names must be stored in the run's latest execution."""
    if (
        connection.execute(
            f"SELECT 1 FROM {table} WHERE execution_id = ? AND {column} = ?", (execution, ref)
        ).fetchone()
        is None
    ):
        noun = column.removesuffix("_ref")
        raise NotFoundError(
            f"{noun} {ref} is not in the store; put the {noun} first",
            code=f"{noun}_not_found",
            details={"ref": ref},
        )


_SCOPE_TABLES = {"stage_ref": "stages", "batch_ref": "batches"}


def _run_of(ref: str) -> str:
    """The run ref a stage, batch or sample ref lives under."""
    parsed = parse_ref(ref)
    return f"run:{'.'.join(parsed.components[:2])}"


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

    def _put_owned(
        self, model: ContractModel, run_ref: str, at: str | None, scopes: dict[str, str | None]
    ) -> None:
        """Upsert a model a run owns into the execution of the run that had started by `at` (the
        model's own time); `scopes` (stage_ref / batch_ref -> ref) must be stored there already."""
        with self._database.transaction() as connection:
            execution = _execution_at(connection, run_ref, at)
            for column, ref in scopes.items():
                if ref is not None:
                    _require_scope(connection, _SCOPE_TABLES[column], column, execution, ref)
            self._table.upsert(connection, {**model.to_dict(), "execution_id": execution})

    def _get(self, ref: str, model_type: type[_ModelT], column: str | None = None) -> _ModelT:
        """The model stored under `ref`; a run-owned one (`column` names its ref column) is read from
        the latest execution of its run."""
        table = self._table
        with self._database.read() as connection:
            parameters: tuple[str, ...]
            if column is None:
                sql, parameters = f"WHERE {table.key[0]} = ?", (ref,)
            else:
                run_ref = ref if column == "run_ref" else _run_of(ref)
                execution = latest_execution_id(connection, run_ref) or ""
                sql, parameters = f"WHERE execution_id = ? AND {column} = ?", (execution, ref)
            row = connection.execute(
                f"SELECT {table.column_list} FROM {table.name} {sql}", parameters
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

    def _list_latest(
        self, run_ref: str, order: str, extra: str = "", parameters: tuple[Any, ...] = ()
    ) -> list[Any]:
        """What the latest execution of `run_ref` holds in this table."""
        with self._database.read() as connection:
            execution = latest_execution_id(connection, run_ref) or ""
        return self._list(f"WHERE execution_id = ?{extra}", (execution, *parameters), order)


class ProjectRepository(_Repository):
    table_name = "projects"

    def put_project(self, project: Project) -> None:
        self._check(project, Project)
        self._put(project, {})

    def get_project(self, project_ref: str) -> Project:
        return self._get(project_ref, Project)

    def list_projects(self) -> list[Project]:
        return self._list(order="created_at, rowid")


# Only the latest execution of each run (what a run ref names); `ctx.list_runs(all_executions=True)`
# lists the others.
_LATEST_ONLY = "latest = 1"


class RunRepository(_Repository):
    table_name = "runs"

    def put_run(self, run: Run) -> None:
        """Store a run written by hand. An execution is known by its start: a run whose ref and
        `started_at` are stored already updates that execution (writing history twice changes
        nothing), any other start adds an execution of the ref."""
        self._check(run, Run)
        with self._database.transaction() as connection:
            require_parent(connection, "project_ref", run.project_ref)
            row = connection.execute(
                "SELECT execution_id FROM runs WHERE run_ref = ? AND started_key = ? "
                "ORDER BY rowid DESC LIMIT 1",
                (run.run_ref, instant_key(run.started_at)),
            ).fetchone()
            execution = new_execution_id() if row is None else str(row[0])
            self._table.upsert(connection, {**run.to_dict(), "execution_id": execution})

    def get_run(self, run_ref: str) -> Run:
        """The latest execution of `run_ref`."""
        return self._get(run_ref, Run, "run_ref")

    def list_runs(self, project_ref: str | None = None) -> list[Run]:
        """The latest execution of each run (of one project), oldest first."""
        if project_ref is None:
            return self._list(f"WHERE {_LATEST_ONLY}", (), "started_key, rowid")
        return self._list(f"WHERE project_ref = ? AND {_LATEST_ONLY}", (project_ref,), "started_key, rowid")


class StageRepository(_Repository):
    table_name = "stages"

    def put_stage_execution(self, stage: StageExecution) -> None:
        self._check(stage, StageExecution)
        self._put_owned(stage, stage.run_ref, stage.started_at, {})

    def get_stage_execution(self, stage_ref: str) -> StageExecution:
        return self._get(stage_ref, StageExecution, "stage_ref")

    def list_stage_executions(self, run_ref: str) -> list[StageExecution]:
        return self._list_latest(run_ref, "coalesce(order_index, 1e18), started_at, rowid")


class BatchRepository(_Repository):
    table_name = "batches"

    def put_batch_execution(self, batch: BatchExecution) -> None:
        self._check(batch, BatchExecution)
        self._put_owned(batch, batch.run_ref, batch.started_at, {"stage_ref": batch.stage_execution_ref})

    def get_batch_execution(self, batch_ref: str) -> BatchExecution:
        return self._get(batch_ref, BatchExecution, "batch_ref")

    def list_batch_executions(self, run_ref: str, stage_ref: str | None = None) -> list[BatchExecution]:
        order = "coalesce(order_index, 1e18), started_at, rowid"
        if stage_ref is None:
            return self._list_latest(run_ref, order)
        return self._list_latest(run_ref, order, " AND stage_ref = ?", (stage_ref,))


class SampleRepository(_Repository):
    table_name = "samples"

    def put_sample_observation(self, sample: SampleObservation) -> None:
        self._check(sample, SampleObservation)
        self._put_owned(
            sample,
            sample.run_ref,
            sample.observed_at,
            {"stage_ref": sample.stage_execution_ref, "batch_ref": sample.batch_execution_ref},
        )

    def get_sample_observation(self, sample_ref: str) -> SampleObservation:
        return self._get(sample_ref, SampleObservation, "sample_ref")

    def list_sample_observations(self, run_ref: str) -> list[SampleObservation]:
        return self._list_latest(run_ref, "observed_at, rowid")


class DeploymentRepository(_Repository):
    table_name = "deployments"

    def put_deployment_execution(self, deployment: DeploymentExecution) -> None:
        """Store a deployment written by hand, linked to the latest execution of its run."""
        self._check(deployment, DeploymentExecution)
        with self._database.transaction() as connection:
            require_parent(connection, "project_ref", deployment.project_ref)
            fields = deployment.to_dict()
            if deployment.run_ref is not None:
                fields["run_execution_id"] = _execution_at(
                    connection, deployment.run_ref, deployment.started_at
                )
            self._table.upsert(connection, fields)

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
        self._put_owned(snapshot, snapshot.run_ref, snapshot.captured_at, {})

    def get_environment_snapshot(self, run_ref: str) -> EnvironmentSnapshot:
        return self._get(run_ref, EnvironmentSnapshot, "run_ref")


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
