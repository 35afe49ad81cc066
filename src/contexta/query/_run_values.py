"""Runs as columns of field values, read with one SELECT for the runs and one per metric field.

A search over ten thousand runs reads no metric point: a metric field is answered from the series
summaries the store keeps at ingest (latest value with its capture position, min and max, found by
the key index of schema 4). Only series stored before schema 4, whose extremes were never recorded,
have their points read, and only when min() or max() of their key is asked for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from contexta.contract._non_finite import decode_metric_value
from contexta.query._bulk import collection_paused
from contexta.query._fetch import instant
from contexta.query._run_fields import RunField
from contexta.store import load_columns, select_series

__all__ = ["RunRows", "fetch_run_rows", "field_column"]

_ROW_SELECT = (
    "SELECT runs.execution_id, "
    "CASE WHEN latest THEN run_ref ELSE run_ref || '@' || execution_number END, "
    "coalesce(projects.display_name, projects.name, "
    "substr(runs.project_ref, instr(runs.project_ref, ':') + 1)), "
    "coalesce(runs.display_name, runs.name), status, started_at, ended_at, runs.tags, config_snapshot "
    "FROM runs LEFT JOIN projects ON projects.project_ref = runs.project_ref"
)


@dataclass(frozen=True, slots=True)
class RunRows:
    """The runs a search considers, column by column, in listing order (oldest first)."""

    execution_ids: Sequence[str]
    run_ids: Sequence[str]
    projects: Sequence[str]
    names: Sequence[str]
    statuses: Sequence[str]
    started_at: Sequence[str]
    ended_at: Sequence[str | None]
    tags: Sequence[str | None]  # JSON text, decoded only when a field asks
    config_snapshots: Sequence[str | None]

    @property
    def count(self) -> int:
        return len(self.execution_ids)


def fetch_run_rows(
    connection: sqlite3.Connection,
    *,
    project_ref: str | None,
    equal: Sequence[tuple[str, str]],
    all_executions: bool,
) -> RunRows:
    """The runs of `project_ref` (or all) whose `name` / `status` equal the values in `equal` (what
    the search could hand to SQL), in listing order: the latest executions, or every one."""
    clauses, parameters = [], []
    if project_ref is not None:
        clauses.append("runs.project_ref = ?")
        parameters.append(project_ref)
    for column, value in equal:
        clauses.append("coalesce(runs.display_name, runs.name) = ?" if column == "name" else "status = ?")
        parameters.append(value)
    if not all_executions:
        clauses.append("latest")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with collection_paused():
        rows = connection.execute(f"{_ROW_SELECT}{where} ORDER BY runs.started_key, runs.rowid", parameters)
        columns = list(zip(*rows, strict=True)) or [() for _ in range(9)]
    return RunRows(*columns)


def _json_values(texts: Sequence[str | None]) -> list[Any]:
    if texts.count(None) == len(texts):
        return [None] * len(texts)
    decoded: list[Any] = orjson.loads(
        "[" + ",".join("null" if text is None else text for text in texts) + "]"
    )
    return decoded


def _at_path(document: Any, path: tuple[str, ...]) -> Any:
    for segment in path:
        if not isinstance(document, dict):
            return None
        document = document.get(segment)
    return document


def _duration(started: str, ended: str | None) -> float | None:
    if ended is None:
        return None
    return (instant(ended) - instant(started)).total_seconds()


_METRIC_FROM = (
    "FROM metric_series s{join} WHERE s.key = ? AND s.deployment_ref = ''{stage} GROUP BY s.execution_id"
)
_STAGE_JOIN = " JOIN stages st ON st.execution_id = s.execution_id AND st.stage_ref = s.stage_ref"
_STAGE_WHERE = " AND (st.display_name = ? OR st.name = ?)"


def _metric_values(connection: sqlite3.Connection, field: RunField) -> dict[str, Any]:
    """execution id -> the metric field's value, for every execution that has one."""
    join, stage = ("", "") if field.stage is None else (_STAGE_JOIN, _STAGE_WHERE)
    parameters: list[Any] = [field.key] if field.stage is None else [field.key, field.stage, field.stage]
    source = _METRIC_FROM.format(join=join, stage=stage)
    if field.aggregate == "latest":
        # SQLite takes the bare column from the row holding max(): the series captured last.
        rows = connection.execute(
            f"SELECT s.execution_id, s.last_value, max(s.last_seq) {source}", parameters
        )
        return {execution: decode_metric_value(value) for execution, value, _ in rows}
    extreme = "min(s.min_value)" if field.aggregate == "min" else "max(s.max_value)"
    found: dict[str, Any] = {}
    for execution, value, known in connection.execute(
        f"SELECT s.execution_id, {extreme}, min(s.extremes_known) {source}", parameters
    ):
        found[execution] = value if known else _extreme_from_points(connection, execution, field)
    return found


def _extreme_from_points(connection: sqlite3.Connection, execution_id: str, field: RunField) -> Any:
    """min or max of the field's points, read from them (series stored before schema 4)."""
    series = [
        row
        for row in select_series(connection, execution_id=execution_id, key=field.key)
        if row.deployment_ref is None
    ]
    if field.stage is not None:
        stage_refs = {
            ref
            for (ref,) in connection.execute(
                "SELECT stage_ref FROM stages WHERE execution_id = ? AND (display_name = ? OR name = ?)",
                (execution_id, field.stage, field.stage),
            )
        }
        series = [row for row in series if row.stage_ref in stage_refs]
    values = [value for value in load_columns(connection, series).values if value == value]  # noqa: PLR0124
    if not values:
        return None
    return min(values) if field.aggregate == "min" else max(values)


def field_column(
    connection: sqlite3.Connection, runs: RunRows, field: RunField, rows: Sequence[int] | None = None
) -> list[Any]:
    """The stored value of `field` for each run (of `rows`, default all), None where it has none."""
    picked = range(runs.count) if rows is None else rows
    kind = field.kind
    if kind == "metric":
        values = _metric_values(connection, field)
        return [values.get(runs.execution_ids[row]) for row in picked]
    if kind in ("param", "tag"):
        texts = runs.config_snapshots if kind == "param" else runs.tags
        documents = _json_values([texts[row] for row in picked])
        return [_at_path(document, field.path) for document in documents]
    if kind == "duration":
        return [_duration(runs.started_at[row], runs.ended_at[row]) for row in picked]
    column: Sequence[Any] = {
        "name": runs.names,
        "status": runs.statuses,
        "run_id": runs.run_ids,
        "project": runs.projects,
        "started_at": runs.started_at,
    }[kind]
    return [column[row] for row in picked]
