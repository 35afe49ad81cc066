"""Runs as columns of field values: one SELECT for the runs, one per metric field.

The runs' SELECT reads only the columns the search's fields need and, beside them, every params or
tags field asked for, taken out of the JSON by SQLite (`json_extract`): ten thousand config snapshots
are never decoded in Python. Records are built afterwards for the page only.

A metric field reads no point: it is answered from the series summaries the store keeps at ingest
(latest value with its capture position, min and max) through the covering key index of schema 4.
Only series stored before schema 4, whose extremes were never recorded, have their points read, and
only when min() or max() of their key is asked for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from contexta.contract import decode_metric_value
from contexta.query._bulk import collection_paused
from contexta.query._fetch import instant
from contexta.query._run_fields import RunField
from contexta.store import is_postgres, load_columns, select_series

__all__ = ["RunRows", "fetch_run_rows", "field_column", "json_bound", "metric_bound"]

# What a run's own fields are read from.
_COLUMNS = {
    "run_id": "CASE WHEN latest = 1 THEN run_ref ELSE run_ref || '@' || execution_number END",
    "project": "coalesce(projects.display_name, projects.name, "
    "substr(runs.project_ref, instr(runs.project_ref, ':') + 1))",
    "name": "coalesce(runs.display_name, runs.name)",
    "status": "status",
    "started_at": "started_at",
    "ended_at": "ended_at",
    "tags": "runs.tags",
    "config_snapshot": "config_snapshot",
}
_NEEDS = {"duration": ("started_at", "ended_at"), "metric": ()}


@dataclass(frozen=True, slots=True)
class RunRows:
    """The runs a search considers, in listing order (oldest first): each row starts with the
    execution id; `at` gives where each other column read is (a params or tags field's value, then its
    JSON type, sit at the field's position)."""

    rows: list[tuple[Any, ...]]
    at: dict[str | RunField, int]
    narrowed: bool = False  # only the runs that may match (see `metric_bound`), not all of them

    @property
    def count(self) -> int:
        return len(self.rows)

    def execution_id(self, row: int) -> str:
        return str(self.rows[row][0])


def _json_path(path: tuple[str, ...]) -> str | None:
    """The SQLite JSON path of a params path or tag name; None when a segment cannot be quoted in one
    (it holds a double quote or backslash): that field is read in Python instead."""
    if any('"' in segment or "\\" in segment for segment in path):
        return None
    return "$" + "".join(f'."{segment}"' for segment in path)


def _plan(
    fields: Sequence[RunField], *, postgres: bool = False, narrowed: bool = False
) -> tuple[list[tuple[str | RunField, str]], list[Any]]:
    """The columns to select for `fields` (name or field, SQL) and the parameters they bind.

    PostgreSQL takes the value out with its own operator (`#>`, the path as an array of keys) and
    hands it over decoded, with its type: no type column is needed there. When the server has already
    narrowed the runs down (`metric_bound`, `json_bound`), each latest-value metric field is read in
    the same statement, one index lookup per run left, instead of a second statement naming them all."""
    selected: dict[str | RunField, str] = {}
    paths: list[Any] = []
    for wanted in fields:
        if postgres and narrowed and wanted.kind == "metric" and wanted.aggregate == "latest":
            staged = wanted.stage is not None
            selected[wanted] = _METRIC_LATEST_OF_RUN.format(
                join=_STAGE_JOIN if staged else "", stage=_STAGE_NAMED if staged else ""
            )
            paths += [wanted.key, wanted.stage, wanted.stage] if staged else [wanted.key]
            continue
        source = "config_snapshot" if wanted.kind == "param" else "tags"
        path = _json_path(wanted.path) if wanted.kind in ("param", "tag") else None
        if path is not None and postgres:
            selected[wanted] = f"contexta_jsonb({_COLUMNS[source]}) #> ?, NULL"
            paths.append(list(wanted.path))
            continue
        if path is not None:
            selected[wanted] = f"json_extract({_COLUMNS[source]}, ?), json_type({_COLUMNS[source]}, ?)"
            paths += [path, path]
            continue
        needs = (source,) if wanted.kind in ("param", "tag") else _NEEDS.get(wanted.kind, (wanted.kind,))
        for name in needs:
            selected.setdefault(name, _COLUMNS[name])
    return list(selected.items()), paths


def fetch_run_rows(
    connection: sqlite3.Connection,
    fields: Sequence[RunField],
    *,
    project_ref: str | None,
    equal: Sequence[tuple[str, str]],
    all_executions: bool,
    include_archived: bool,
    narrowing: Sequence[tuple[str, list[Any]]] = (),
    narrowing_json: Sequence[tuple[str, list[Any]]] = (),
) -> RunRows:
    """The runs of `project_ref` (or all) whose `name` / `status` equal the values in `equal` (what
    the search could hand to SQL), in listing order (the latest executions, or every one), with what
    `fields` read; archived executions only with `include_archived`; only those passing each
    `narrowing` condition (SQL and its parameters, see `metric_bound`) and each `narrowing_json` one
    (see `json_bound`).

    The JSON conditions are applied to what the others leave, behind a fence (`OFFSET 0`): the planner
    cannot estimate them and would otherwise decode every run's tags first."""
    narrowed = bool(narrowing) or bool(narrowing_json)
    selected, parameters = _plan(
        list(dict.fromkeys(fields)), postgres=is_postgres(connection), narrowed=narrowed
    )
    at: dict[str | RunField, int] = {}
    position = 1
    for name, _ in selected:
        at[name] = position
        position += 2 if isinstance(name, RunField) else 1
    clauses = []
    if project_ref is not None:
        clauses.append("runs.project_ref = ?")
        parameters.append(project_ref)
    for column, value in equal:
        clauses.append(f"{_COLUMNS[column]} = ?")
        parameters.append(value)
    if not all_executions:
        clauses.append("latest = 1")
    if not include_archived:
        clauses.append("archived_at IS NULL")
    for clause, values in narrowing:
        clauses.append(clause)
        parameters += values
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    source = "runs"
    if narrowing_json:
        source = f"(SELECT * FROM runs{where} OFFSET 0) runs"
        where = f" WHERE {' AND '.join(clause for clause, _ in narrowing_json)}"
        for _, values in narrowing_json:
            parameters += values
    join = " LEFT JOIN projects ON projects.project_ref = runs.project_ref" if "project" in at else ""
    columns = ", ".join(["runs.execution_id", *(sql for _, sql in selected)])
    sql = f"SELECT {columns} FROM {source}{join}{where} ORDER BY runs.started_key, runs.rowid"
    with collection_paused():
        return RunRows(connection.execute(sql, parameters).fetchall(), at, narrowed)


def _from_json(value: Any, json_type: str | None) -> Any:
    """A value json_extract gave, as the JSON held it: true/false as bools, objects and arrays
    decoded (json_extract gives them as text)."""
    if json_type in ("true", "false"):
        return json_type == "true"
    if json_type in ("object", "array"):
        return orjson.loads(value) if isinstance(value, str | bytes) else value  # PostgreSQL: decoded
    return value


def _at_path(text: str | None, path: tuple[str, ...]) -> Any:
    document: Any = None if text is None else orjson.loads(text)
    for segment in path:
        if not isinstance(document, dict):
            return None
        document = document.get(segment)
    return document


def _duration(started: str, ended: str | None) -> float | None:
    if ended is None:
        return None
    return (instant(ended) - instant(started)).total_seconds()


# One row per execution holding the key (in the stage named, when the field names one), from the
# covering key index; a stage-qualified field looks each series' stage up by its primary key.
_METRIC_GROUPED = (
    "SELECT s.execution_id, {value}, {order} FROM metric_series s{join} "
    "WHERE s.key = ? AND s.deployment_ref = ''{stage} GROUP BY s.execution_id"
)
_METRIC_LATEST_POSTGRES = (
    "SELECT DISTINCT ON (s.execution_id) s.execution_id, s.last_value, s.last_seq FROM metric_series s{join} "
    "WHERE s.key = ? AND s.deployment_ref = ''{stage} ORDER BY s.execution_id, s.last_seq DESC"
)
_STAGE_JOIN = " JOIN stages st ON st.execution_id = s.execution_id AND st.stage_ref = s.stage_ref"
_STAGE_NAMED = " AND (st.display_name = ? OR st.name = ?)"
# The same row for one run, as a column of the runs' SELECT (PostgreSQL, once the runs are narrowed).
_METRIC_LATEST_OF_RUN = (
    "(SELECT s.last_value FROM metric_series s{join} WHERE s.execution_id = runs.execution_id "
    "AND s.key = ? AND s.deployment_ref = ''{stage} ORDER BY s.last_seq DESC LIMIT 1), NULL"
)


def metric_bound(wanted: RunField, operator: str, value: float) -> tuple[str, list[Any]]:
    """A condition on runs that every run whose latest `wanted` passes `operator value` passes too:
    it has a series of that key, in any stage, whose last value does. A PostgreSQL search applies it
    in the server, so only those runs' values cross the wire; the filter itself then decides, as
    always (this one may keep more: a run whose latest series, or the one in the stage named, does
    not pass, or a NaN, which PostgreSQL orders above every number). The stage is left to the filter:
    joining the stages here cost more than the rows it saves."""
    sql = (
        "runs.execution_id IN (SELECT s.execution_id FROM metric_series s WHERE s.key = ? "
        f"AND s.deployment_ref = '' AND s.last_value {'<>' if operator == '!=' else operator} ?)"
    )
    return sql, [wanted.key, value]


def _numeric_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def json_bound(wanted: RunField, value: str) -> tuple[str, list[Any]] | None:
    """For `params.PATH = 'text'` or `tags.NAME = 'text'`: a condition on runs that every run passing
    the comparison passes too (PostgreSQL: the value at the path, as text, is the text), or None when
    the comparison can hold for values whose text differs: a number against numeric text (tag 3 =
    '3.0'), true/false, a list or mapping compared as its JSON, a path with a quote or backslash."""
    if (
        wanted.kind not in ("param", "tag")
        or _json_path(wanted.path) is None
        or _numeric_text(value)
        or value in ("true", "false")
        or value.startswith(("[", "{"))
        or "\x00" in value
    ):
        return None
    source = _COLUMNS["config_snapshot" if wanted.kind == "param" else "tags"]
    return f"contexta_jsonb({source}) #>> ? = ?", [list(wanted.path), value]


def _metric_values(
    connection: sqlite3.Connection, wanted: RunField, executions: Sequence[str] | None = None
) -> dict[str, Any]:
    """execution id -> the metric field's value, for every execution that has one (of `executions`,
    when given: PostgreSQL only)."""
    staged = wanted.stage is not None
    parameters: list[Any] = [wanted.key, wanted.stage, wanted.stage] if staged else [wanted.key]
    shape = {"join": _STAGE_JOIN if staged else "", "stage": _STAGE_NAMED if staged else ""}
    if executions is not None:
        shape["stage"] += " AND s.execution_id = ANY(?)"
        parameters.append(list(executions))
    if wanted.aggregate == "latest":
        # SQLite takes the bare column from the row holding max(): the series captured last.
        # PostgreSQL has no bare columns beside an aggregate; DISTINCT ON picks the same row.
        if is_postgres(connection):
            sql = _METRIC_LATEST_POSTGRES.format(**shape)
        else:
            sql = _METRIC_GROUPED.format(value="s.last_value", order="max(s.last_seq)", **shape)
        return {
            execution: decode_metric_value(value)
            for execution, value, _ in connection.execute(sql, parameters)
        }
    value = "min(s.min_value)" if wanted.aggregate == "min" else "max(s.max_value)"
    sql = _METRIC_GROUPED.format(value=value, order="min(s.extremes_known)", **shape)
    return {
        execution: value if known else _extreme_from_points(connection, execution, wanted)
        for execution, value, known in connection.execute(sql, parameters)
    }


def _extreme_from_points(connection: sqlite3.Connection, execution_id: str, wanted: RunField) -> Any:
    """min or max of the field's points, read from them (series stored before schema 4)."""
    series = [
        row
        for row in select_series(connection, execution_id=execution_id, key=wanted.key)
        if row.deployment_ref is None
    ]
    if wanted.stage is not None:
        stage_refs = {
            ref
            for (ref,) in connection.execute(
                "SELECT stage_ref FROM stages WHERE execution_id = ? AND (display_name = ? OR name = ?)",
                (execution_id, wanted.stage, wanted.stage),
            )
        }
        series = [row for row in series if row.stage_ref in stage_refs]
    values = [value for value in load_columns(connection, series).values if value == value]  # noqa: PLR0124
    if not values:
        return None
    return min(values) if wanted.aggregate == "min" else max(values)


def field_column(
    connection: sqlite3.Connection, runs: RunRows, wanted: RunField, rows: Sequence[int] | None = None
) -> list[Any]:
    """The stored value of `wanted` for each run (of `rows`, default all), None where it has none."""
    picked = runs.rows if rows is None else [runs.rows[row] for row in rows]
    kind = wanted.kind
    if kind == "metric" and wanted in runs.at:  # read with the runs (see `_plan`)
        position = runs.at[wanted]
        return [decode_metric_value(row[position]) for row in picked]
    if kind == "metric":
        narrowed = runs.narrowed and is_postgres(connection)
        values = _metric_values(connection, wanted, [row[0] for row in runs.rows] if narrowed else None)
        return [values.get(row[0]) for row in picked]
    if kind in ("param", "tag"):
        at = runs.at.get(wanted)
        if at is None:  # a path SQLite cannot name
            source = runs.at["config_snapshot" if kind == "param" else "tags"]
            return [_at_path(row[source], wanted.path) for row in picked]
        return [_from_json(row[at], row[at + 1]) for row in picked]
    if kind == "duration":
        started, ended = runs.at["started_at"], runs.at["ended_at"]
        return [_duration(row[started], row[ended]) for row in picked]
    index = runs.at[kind]
    return [row[index] for row in picked]
