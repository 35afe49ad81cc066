"""Rows to read models, on an open connection: the SELECTs every query shares, and their order.

Timestamps are ordered as instants, not as text (`...:00Z` sorts after `...:00.5Z` as text), so rows
are sorted here rather than with ORDER BY; ties fall back to `rowid`, the order rows were first put.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from contexta.contract._timestamps import parse_timestamp
from contexta.errors import ContextaError
from contexta.query._bulk import build_many, collection_paused
from contexta.query._models import (
    ArtifactRecord,
    BatchRecord,
    DeploymentRecord,
    EnvironmentRecord,
    MetricPoints,
    ProjectRecord,
    RunNote,
    RunRecord,
    SampleRecord,
    StageRecord,
)
from contexta.store import (
    RecordView,
    default_subject,
    load_columns,
    loads_or_none,
    record_view,
    select_series,
)

__all__ = [
    "AlarmEvent",
    "DegradedSummary",
    "NonFiniteSeries",
    "UnfinishedSamples",
    "fetch_alarm_events",
    "fetch_artifacts",
    "fetch_batches",
    "fetch_degraded_summary",
    "fetch_deployments",
    "fetch_environment",
    "fetch_metric_points",
    "fetch_metric_stage_refs",
    "fetch_non_finite_series",
    "fetch_projects",
    "fetch_record_counts",
    "fetch_records",
    "fetch_runs",
    "fetch_samples",
    "fetch_stage_names",
    "fetch_stages",
    "fetch_unfinished_samples",
    "instant",
]

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


class DegradedSummary(NamedTuple):
    """The degraded records of one reason code in a run."""

    reason_code: str
    record_count: int
    dropped_count: int
    first_record_ref: str


def instant(timestamp: str | None) -> datetime:
    """The sort key of a stored timestamp; a missing or unreadable one sorts last."""
    if timestamp is None:
        return _FAR_FUTURE
    try:
        return parse_timestamp(timestamp)
    except ContextaError:
        return _FAR_FUTURE


def _order(order_index: int | None) -> tuple[bool, int]:
    # Rows without an order_index come after the numbered ones.
    return (order_index is None, order_index or 0)


def fetch_projects(connection: sqlite3.Connection) -> list[ProjectRecord]:
    rows = connection.execute(
        "SELECT rowid, project_ref, coalesce(display_name, name), created_at, description FROM projects"
    ).fetchall()
    rows.sort(key=lambda row: (instant(row[3]), row[0]))
    return build_many(ProjectRecord, (row[1:5] for row in rows))


_RUN_SELECT = (
    # An earlier execution is named `ref@n` (the latest is the run ref itself): what is listed can be
    # passed back to every query. A run put before its project still names it: the project ref's
    # component is its name.
    "SELECT CASE WHEN latest = 1 THEN run_ref ELSE run_ref || '@' || execution_number END, "
    "coalesce(projects.display_name, projects.name, "
    "substr(runs.project_ref, instr(runs.project_ref, ':') + 1)), "
    "coalesce(runs.display_name, runs.name), status, started_at, ended_at, runs.tags, metadata, "
    "dataset_ref, code_revision, config_snapshot, runs.end_reason, runs.failure, runs.execution_id, "
    "execution_number, latest, archived_at IS NOT NULL, runs.notes "
    "FROM runs LEFT JOIN projects ON projects.project_ref = runs.project_ref"
)
_RUN_JSON_COLUMNS = (6, 7, 10, 12)  # tags, metadata, config_snapshot, failure
_RUN_BOOL_COLUMNS = (15, 16)  # latest, archived
_RUN_NOTES_COLUMN = 17


def _json_column(texts: Sequence[str | None]) -> Sequence[Any]:
    """Decode a column of JSON texts (None stays None) with one parser call instead of one per row."""
    if texts.count(None) == len(texts):  # a column nobody filled (most runs have no failure)
        return texts
    return orjson.loads("[" + ",".join("null" if text is None else text for text in texts) + "]")  # type: ignore[no-any-return]


def _notes_column(texts: Sequence[str | None]) -> Sequence[tuple[RunNote, ...]]:
    """The `notes` column as each run's notes (most runs have none: no parsing for them)."""
    return [
        ()
        if text is None
        else tuple(RunNote(str(note["text"]), str(note["at"])) for note in orjson.loads(text))
        for text in texts
    ]


def fetch_runs(
    connection: sqlite3.Connection,
    *,
    project_ref: str | None = None,
    execution_ids: list[str] | None = None,
    status: str | None = None,
    all_executions: bool = False,
    include_archived: bool = True,
) -> list[RunRecord]:
    """Runs matching every filter given, oldest first (by start instant, then the order they were put):
    the latest execution of each run, or with `all_executions` every one; without
    `include_archived`, none that was archived."""
    clauses: list[str] = []
    parameters: list[Any] = []
    if project_ref is not None:
        clauses.append("runs.project_ref = ?")
        parameters.append(project_ref)
    if status is not None:
        clauses.append("status = ?")
        parameters.append(status)
    if execution_ids is not None:  # one JSON parameter: SQLite caps the number of `?` in a statement
        clauses.append("execution_id IN (SELECT value FROM json_each(?))")
        parameters.append(orjson.dumps(execution_ids).decode())
    elif not all_executions:
        clauses.append("latest = 1")
    if not include_archived:
        clauses.append("archived_at IS NULL")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with collection_paused():
        rows = connection.execute(
            f"{_RUN_SELECT}{where} ORDER BY runs.started_key, runs.rowid", parameters
        ).fetchall()
        if not rows:
            return []
        # Column at a time, so the only per-row Python work is building the record.
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for index in _RUN_JSON_COLUMNS:
            columns[index] = _json_column(columns[index])
        for index in _RUN_BOOL_COLUMNS:
            columns[index] = list(map(bool, columns[index]))
        columns[_RUN_NOTES_COLUMN] = _notes_column(columns[_RUN_NOTES_COLUMN])
        return build_many(RunRecord, zip(*columns, strict=True))


def _failures(rows: list[tuple[Any, ...]], column: int) -> list[tuple[Any, ...]]:
    """Rows with their `failure` column (JSON text) decoded."""
    return [(*row[:column], loads_or_none(row[column]), *row[column + 1 :]) for row in rows]


def fetch_stages(connection: sqlite3.Connection, execution_id: str) -> list[StageRecord]:
    """An execution's stages by order_index, then start time."""
    rows = connection.execute(
        "SELECT rowid, stage_ref, coalesce(display_name, name), status, started_at, ended_at, order_index, "
        "end_reason, failure FROM stages WHERE execution_id = ?",
        (execution_id,),
    ).fetchall()
    rows.sort(key=lambda row: (_order(row[6]), instant(row[4]), row[0]))
    return build_many(StageRecord, (row[1:] for row in _failures(rows, 8)))


def fetch_batches(
    connection: sqlite3.Connection, execution_id: str, stage_ref: str | None = None
) -> list[BatchRecord]:
    """An execution's (or one stage's) batches: grouped by their stage's order, then order_index,
    then start."""
    stage_rank = {stage.stage_id: rank for rank, stage in enumerate(fetch_stages(connection, execution_id))}
    sql = (
        "SELECT rowid, batch_ref, coalesce(display_name, name), status, started_at, ended_at, order_index, "
        "stage_ref, end_reason, failure FROM batches WHERE execution_id = ?"
    )
    parameters: list[Any] = [execution_id]
    if stage_ref is not None:
        sql += " AND stage_ref = ?"
        parameters.append(stage_ref)
    rows = connection.execute(sql, parameters).fetchall()
    rows.sort(
        key=lambda row: (stage_rank.get(row[7], len(stage_rank)), _order(row[6]), instant(row[4]), row[0])
    )
    return build_many(BatchRecord, (row[1:] for row in _failures(rows, 9)))


def fetch_samples(
    connection: sqlite3.Connection,
    execution_id: str,
    stage_ref: str | None = None,
    batch_ref: str | None = None,
) -> list[SampleRecord]:
    """An execution's samples (optionally of one stage and/or batch) in the order they were observed."""
    sql = (
        "SELECT rowid, sample_ref, coalesce(display_name, name), observed_at, retention_class, "
        "redaction_profile, stage_ref, "
        "batch_ref, status, ended_at, end_reason, failure FROM samples WHERE execution_id = ?"
    )
    parameters: list[Any] = [execution_id]
    if stage_ref is not None:
        sql += " AND stage_ref = ?"
        parameters.append(stage_ref)
    if batch_ref is not None:
        sql += " AND batch_ref = ?"
        parameters.append(batch_ref)
    rows = connection.execute(sql, parameters).fetchall()
    rows.sort(key=lambda row: (instant(row[3]), row[0]))
    return build_many(SampleRecord, (row[1:] for row in _failures(rows, 11)))


def fetch_deployments(
    connection: sqlite3.Connection,
    *,
    project_ref: str | None = None,
    execution_id: str | None = None,
    artifact_ref: str | None = None,
) -> list[DeploymentRecord]:
    """Deployments matching every filter given (a project, the run execution deployed, the artifact
    deployed), oldest first (start time, then order_index)."""
    clauses: list[str] = []
    parameters: list[Any] = []
    if project_ref is not None:
        clauses.append("d.project_ref = ?")
        parameters.append(project_ref)
    if execution_id is not None:
        clauses.append("d.run_execution_id = ?")
        parameters.append(execution_id)
    if artifact_ref is not None:
        clauses.append("d.artifact_ref = ?")
        parameters.append(artifact_ref)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    # A deployment of an earlier execution names it `ref@n`, as listings do.
    rows = connection.execute(
        "SELECT d.rowid, d.deployment_ref, coalesce(d.display_name, d.name), d.status, "
        "CASE WHEN r.latest = 0 THEN d.run_ref || '@' || r.execution_number ELSE d.run_ref END, "
        "d.artifact_ref, d.started_at, d.ended_at, d.end_reason, d.failure, d.order_index "
        "FROM deployments AS d "
        "LEFT JOIN runs AS r ON r.execution_id = d.run_execution_id" + where,
        parameters,
    ).fetchall()
    rows.sort(key=lambda row: (instant(row[6]), _order(row[10]), row[0]))
    return build_many(DeploymentRecord, (row[1:10] for row in _failures(rows, 9)))


def fetch_artifacts(connection: sqlite3.Connection, execution_id: str) -> list[ArtifactRecord]:
    """An execution's registered artifacts in the order they were created."""
    rows = connection.execute(
        "SELECT rowid, artifact_ref, kind, run_ref, stage_ref, location_ref, hash_algorithm, hash_value, "
        "size_bytes, created_at, binding_status FROM artifacts WHERE execution_id = ?",
        (execution_id,),
    ).fetchall()
    rows.sort(key=lambda row: (instant(row[9]), row[0]))
    return build_many(ArtifactRecord, (row[1:] for row in rows))


def fetch_environment(connection: sqlite3.Connection, execution_id: str) -> EnvironmentRecord | None:
    row = connection.execute(
        "SELECT python_version, platform, packages, git_revision, captured_at FROM environments "
        "WHERE execution_id = ?",
        (execution_id,),
    ).fetchone()
    if row is None:
        return None
    return EnvironmentRecord(row[0], row[1], loads_or_none(row[2]), row[3], row[4])


def fetch_metric_points(
    connection: sqlite3.Connection,
    execution_id: str,
    metric_key: str,
    stage_ref: str | None = None,
    *,
    run_level: bool = False,
) -> MetricPoints:
    """One metric's points in capture order: all of them, those of one stage, or (`run_level`) those
    captured on the run itself, outside every stage."""
    series = select_series(connection, execution_id=execution_id, key=metric_key, stage_ref=stage_ref)
    if run_level:
        series = [row for row in series if row.stage_ref is None]
    if not series:
        return MetricPoints()
    # Points name their stage by ref; a table of them shows the stage's name as typed.
    names = fetch_stage_names(connection, execution_id) if any(row.stage_ref for row in series) else {}
    return MetricPoints(load_columns(connection, series), names)


def fetch_stage_names(connection: sqlite3.Connection, execution_id: str) -> dict[str, str]:
    """stage ref -> the stage's name as typed, for every stage of an execution."""
    rows = connection.execute(
        "SELECT stage_ref, coalesce(display_name, name) FROM stages WHERE execution_id = ?", (execution_id,)
    ).fetchall()
    return {ref: name for ref, name in rows}


def fetch_records(connection: sqlite3.Connection, execution_id: str) -> RecordView:
    """Every record of an execution, in capture order (each built when read)."""
    return record_view(connection, execution_id=execution_id)


def fetch_degraded_summary(connection: sqlite3.Connection, execution_id: str) -> list[DegradedSummary]:
    """A run's degraded records grouped by reason code, in the order each reason first appeared."""
    rows = connection.execute(
        "SELECT records.key, series.record_count, series.dropped, records.record_ref FROM records JOIN ("
        "  SELECT min(seq) AS first_seq, count(*) AS record_count, total(value) AS dropped FROM records"
        "  WHERE execution_id = ? AND record_type = 'degraded' GROUP BY key"
        ") AS series ON records.seq = series.first_seq ORDER BY series.first_seq",
        (execution_id,),
    ).fetchall()
    return [DegradedSummary(row[0], row[1], int(row[2]), row[3]) for row in rows]


class AlarmEvent(NamedTuple):
    """An event captured at level error or critical."""

    record_ref: str
    event_key: str
    level: str
    message: str
    observed_at: str
    subject_ref: str | None


# Written by a scope an exception escaped; its failed_* diagnostic already reports it.
_FAILURE_EVENTS = tuple(
    f"{kind}.failed" for kind in ("run", "stage", "batch", "sample", "operation", "deployment")
)


_ALARMS = (
    "FROM records WHERE execution_id = ? AND record_type = 'event' "
    "AND document ->> '$.payload.level' IN ('error', 'critical') "
    f"AND key NOT IN ({', '.join('?' * len(_FAILURE_EVENTS))})"
)


def fetch_alarm_events(
    connection: sqlite3.Connection, execution_id: str, limit: int = 20
) -> tuple[list[AlarmEvent], int]:
    """The run's first `limit` events of level error or critical, in capture order (except the ones a
    failing scope writes about itself), and how many it has in all."""
    rows = connection.execute(
        "SELECT record_ref, key, document ->> '$.payload.level', document ->> '$.payload.message', "
        f"observed_at, coalesce(document ->> '$.payload.subject_ref', stage_ref, run_ref) {_ALARMS} "
        "ORDER BY seq LIMIT ?",
        (execution_id, *_FAILURE_EVENTS, limit),
    ).fetchall()
    if len(rows) < limit:
        return [AlarmEvent(*row) for row in rows], len(rows)
    (total,) = connection.execute(f"SELECT count(*) {_ALARMS}", (execution_id, *_FAILURE_EVENTS)).fetchone()
    return [AlarmEvent(*row) for row in rows], int(total)


def fetch_metric_stage_refs(connection: sqlite3.Connection, execution_id: str) -> tuple[int, frozenset[str]]:
    """How many metrics an execution recorded, and the stages that recorded at least one."""
    rows = connection.execute(
        "SELECT stage_ref, sum(point_count) FROM metric_series WHERE execution_id = ? GROUP BY stage_ref",
        (execution_id,),
    ).fetchall()
    return sum(row[1] for row in rows), frozenset(row[0] for row in rows if row[0])


class NonFiniteSeries(NamedTuple):
    """A metric series of a run with NaN or infinite values."""

    key: str
    subject_ref: str  # the innermost scope it was captured on (sample, batch, stage or run)
    stage_ref: str | None
    batch_ref: str | None
    sample_ref: str | None
    non_finite_count: int
    first_step: int | None  # the step of the first non-finite point, if it had one


def fetch_non_finite_series(connection: sqlite3.Connection, execution_id: str) -> list[NonFiniteSeries]:
    """An execution's series that hold NaN or infinite values, in the order they were first captured
    (read from the series rows' counts: no point is read)."""
    rows = connection.execute(
        "SELECT key, run_ref, stage_ref, batch_ref, sample_ref, deployment_ref, extras, non_finite_count, "
        "first_non_finite_step FROM metric_series WHERE execution_id = ? AND non_finite_count > 0 "
        "ORDER BY first_seq",
        (execution_id,),
    ).fetchall()
    found = []
    for key, run_ref, stage, batch, sample, deployment, extras, count, first_step in rows:
        subject = (orjson.loads(extras) if extras else {}).get("subject_ref") or default_subject(
            run_ref, stage or None, batch or None, sample or None, deployment or None
        )
        found.append(
            NonFiniteSeries(
                key, subject or run_ref, stage or None, batch or None, sample or None, count, first_step
            )
        )
    return found


def fetch_record_counts(connection: sqlite3.Connection, execution_id: str) -> dict[str, int]:
    """record type (`metric`, `event`, `span`, `degraded`) -> how many the execution has."""
    rows = connection.execute(
        "SELECT record_type, count(*) FROM records WHERE execution_id = ? GROUP BY record_type",
        (execution_id,),
    ).fetchall()
    counts = {row[0]: row[1] for row in rows}
    (metrics,) = connection.execute(
        "SELECT sum(point_count) FROM metric_series WHERE execution_id = ?", (execution_id,)
    ).fetchone()
    if metrics:
        counts["metric"] = int(metrics)
    return counts


class UnfinishedSamples(NamedTuple):
    """How many of an execution's samples failed or were cancelled, and the first of them."""

    failed: int
    cancelled: int
    first: tuple[SampleRecord, ...]


# Samples that failed or were cancelled on their own account (those a killed run left open are
# closed `interrupted` with it, and its `interrupted` issue says so once).
_UNFINISHED = "status IN ('failed', 'cancelled') AND coalesce(end_reason, '') != 'interrupted'"


def fetch_unfinished_samples(
    connection: sqlite3.Connection, execution_id: str, limit: int = 20
) -> UnfinishedSamples:
    """An execution's failed and cancelled samples: counted, and the first `limit` in capture order
    (an evaluation of 100,000 cases is summarised, not listed)."""
    counts = dict(
        connection.execute(
            f"SELECT status, count(*) FROM samples WHERE execution_id = ? AND {_UNFINISHED} GROUP BY status",
            (execution_id,),
        ).fetchall()
    )
    rows = connection.execute(
        "SELECT rowid, sample_ref, coalesce(display_name, name), observed_at, retention_class, "
        "redaction_profile, stage_ref, "
        "batch_ref, status, ended_at, end_reason, failure FROM samples WHERE execution_id = ? "
        f"AND {_UNFINISHED} ORDER BY rowid LIMIT ?",
        (execution_id, limit),
    ).fetchall()
    first = build_many(SampleRecord, (row[1:] for row in _failures(rows, 11)))
    return UnfinishedSamples(int(counts.get("failed", 0)), int(counts.get("cancelled", 0)), tuple(first))
