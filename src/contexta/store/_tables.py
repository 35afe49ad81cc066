"""How each context model maps onto its table: one description serves upserts, reads and the live sink.

Run-owned tables are keyed by the execution and the ref (see `_schema.py`); a document carries its
`execution_id` (captured ones from capture, hand-written ones from the repository that stores them).
Columns a model does not have (execution_id, end_reason, failure) are ignored when a model is built.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contexta.contract._artifacts import ArtifactManifest
from contexta.contract._context import (
    BatchExecution,
    DeploymentExecution,
    OperationExecution,
    Project,
    Run,
    SampleObservation,
    StageExecution,
)
from contexta.contract._environment import EnvironmentSnapshot, LineageEdge
from contexta.contract._model import ContractModel
from contexta.contract._timestamps import instant_key
from contexta.store._rows import dumps_or_none, loads_or_none

__all__ = ["TABLES", "Table"]


@dataclass(frozen=True, slots=True)
class Table:
    """A table and its columns; each column names the model field it holds and whether it is JSON."""

    name: str
    model: type[ContractModel]
    key: tuple[str, ...]
    columns: tuple[tuple[str, str, bool], ...]  # (column, field, json)
    # (column, field): a sortable form of a timestamp field, so SQL can order by instant (see instant_key).
    instant_keys: tuple[tuple[str, str], ...] = ()

    @property
    def column_list(self) -> str:
        return ", ".join(column for column, _, _ in self.columns)

    def row(self, fields: Mapping[str, Any]) -> tuple[Any, ...]:
        """The row for a model's `to_dict()` (or a captured context document)."""
        return tuple(
            dumps_or_none(fields.get(field)) if is_json else fields.get(field)
            for _, field, is_json in self.columns
        )

    def model_from_row(self, row: tuple[Any, ...]) -> Any:
        values = {
            field: loads_or_none(value) if is_json else value
            for (_, field, is_json), value in zip(self.columns, row, strict=True)
        }
        return self.model.from_dict({key: value for key, value in values.items() if value is not None})

    def upsert(self, connection: sqlite3.Connection, fields: Mapping[str, Any], **extra: Any) -> None:
        for column, field in self.instant_keys:
            extra[column] = instant_key(fields[field]) if fields.get(field) is not None else None
        columns = [column for column, _, _ in self.columns] + list(extra)
        values = self.row(fields) + tuple(extra.values())
        updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in self.key)
        connection.execute(
            f"INSERT INTO {self.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT({', '.join(self.key)}) DO UPDATE SET {updates}",
            values,
        )


def _columns(*spec: str) -> tuple[tuple[str, str, bool], ...]:
    """`"column=field"`, `"name"` (same name) or `"tags:json"` column specs."""
    result = []
    for item in spec:
        name, _, kind = item.partition(":")
        column, _, field = name.partition("=")
        result.append((column, field or column, kind == "json"))
    return tuple(result)


TABLES: dict[str, Table] = {
    "projects": Table(
        "projects",
        Project,
        ("project_ref",),
        _columns("project_ref", "name", "display_name", "created_at", "description", "tags:json"),
    ),
    "runs": Table(
        "runs",
        Run,
        ("execution_id",),
        _columns(
            "execution_id",
            "run_ref",
            "project_ref",
            "name",
            "display_name",
            "status",
            "started_at",
            "ended_at",
            "description",
            "dataset_ref",
            "code_revision",
            "tags:json",
            "metadata:json",
            "config_snapshot:json",
            "end_reason",
            "failure:json",
        ),
        instant_keys=(("started_key", "started_at"),),
    ),
    "stages": Table(
        "stages",
        StageExecution,
        ("execution_id", "stage_ref"),
        _columns(
            "execution_id",
            "stage_ref=stage_execution_ref",
            "run_ref",
            "name=stage_name",
            "display_name",
            "status",
            "started_at",
            "ended_at",
            "order_index",
            "end_reason",
            "failure:json",
        ),
    ),
    "batches": Table(
        "batches",
        BatchExecution,
        ("execution_id", "batch_ref"),
        _columns(
            "execution_id",
            "batch_ref=batch_execution_ref",
            "run_ref",
            "stage_ref=stage_execution_ref",
            "name=batch_name",
            "display_name",
            "status",
            "started_at",
            "ended_at",
            "order_index",
            "end_reason",
            "failure:json",
        ),
    ),
    "samples": Table(
        "samples",
        SampleObservation,
        ("execution_id", "sample_ref"),
        _columns(
            "execution_id",
            "sample_ref=sample_observation_ref",
            "run_ref",
            "stage_ref=stage_execution_ref",
            "batch_ref=batch_execution_ref",
            "name=sample_name",
            "display_name",
            "observed_at",
            "status",
            "ended_at",
            "retention_class",
            "redaction_profile",
            "end_reason",
            "failure:json",
        ),
    ),
    "operations": Table(
        "operations",
        OperationExecution,
        ("execution_id", "operation_ref"),
        _columns(
            "execution_id",
            "operation_ref",
            "run_ref",
            "stage_ref=stage_execution_ref",
            "name=operation_name",
            "display_name",
            "status",
            "started_at",
            "ended_at",
            "end_reason",
            "failure:json",
        ),
    ),
    "deployments": Table(
        "deployments",
        DeploymentExecution,
        ("deployment_ref",),
        _columns(
            "deployment_ref=deployment_execution_ref",
            "project_ref",
            "name=deployment_name",
            "display_name",
            "status",
            "started_at",
            "ended_at",
            "order_index",
            "run_ref",
            "artifact_ref",
            "run_execution_id",
            "owner_id",
            "owner_pid",
            "owner_host",
            "end_reason",
            "failure:json",
        ),
        instant_keys=(("started_key", "started_at"),),
    ),
    "environments": Table(
        "environments",
        EnvironmentSnapshot,
        ("execution_id",),
        _columns(
            "execution_id",
            "run_ref",
            "captured_at",
            "python_version",
            "platform",
            "packages:json",
            "git_revision",
            "attributes:json",
        ),
    ),
    "relations": Table(
        "relations",
        LineageEdge,
        ("source_ref", "target_ref", "relation"),
        _columns("source_ref", "target_ref", "relation", "recorded_at", "attributes:json"),
    ),
    "artifacts": Table(
        "artifacts",
        ArtifactManifest,
        ("execution_id", "artifact_ref"),
        _columns(
            "artifact_ref",
            "execution_id",
            "run_ref",
            "stage_ref=stage_execution_ref",
            "kind=artifact_kind",
            "location_ref",
            "hash_algorithm",
            "hash_value",
            "size_bytes",
            "created_at",
            "attributes:json",
        ),
    ),
}

# The table each captured CONTEXT entry (by payload type) goes to.
TABLE_FOR_MODEL = {table.model.__name__: table for table in TABLES.values()}
