"""What a live view (`contexta ui`) reads, cheaply and often: a series' points after a capture
position, each run's state, and the fields a run table can show.

A live page keeps, per series it shows, the capture position (`seq`) of the newest point it has; the
series row's `last_seq` says without reading any point whether there is anything newer, and only the
chunks from that position on are decoded. Run states are one narrow query over the runs table, so a
watcher can diff them on every change of the store without building run records.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

import orjson

from contexta.contract._timestamps import parse_timestamp
from contexta.errors import ValidationError
from contexta.query._models import ReadModel
from contexta.query._reading import reading
from contexta.query._resolve import find_run, find_stage_ref
from contexta.store import NO_STEP, StoreDatabase, load_columns, select_series

__all__ = [
    "FieldNames",
    "RunEvent",
    "RunState",
    "SeriesTail",
    "get_field_names",
    "get_run_events",
    "get_run_states",
    "get_series_tail",
]


@dataclass(frozen=True, slots=True)
class SeriesTail(ReadModel):
    """The points of one metric key in a run (in one stage, when `stage` is given) captured after
    position `after_seq`, in capture order: `steps` (None where a point has none), `times` (seconds
    since the epoch) and `values` (NaN and infinities as captured). `last_seq` is the newest point's
    position (`after_seq` when there is nothing new), the cursor to ask from next; `truncated` says
    more than `limit` points were new and only the first `limit` are here."""

    run_id: str
    stage: str | None
    metric_key: str
    after_seq: int
    last_seq: int
    steps: tuple[int | None, ...]
    times: tuple[float, ...]
    values: tuple[float | int, ...]
    truncated: bool = False
    seqs: tuple[int, ...] = ()  # each point's capture position (a page drops the ones it has)


@dataclass(frozen=True, slots=True)
class RunState(ReadModel):
    """One run execution's place and progress: its id as queries name it (the run ref for the latest
    execution, `ref@n` for an earlier one), status and end. `metric_count`, for a run still open, is
    how many charted series (a key in a stage, samples left out) it has so far, so an open page learns
    of a metric first captured after it loaded; None once the run has ended."""

    run_id: str
    execution_id: str
    status: str
    ended_at: str | None
    archived: bool
    metric_count: int | None = None


def _seconds(observed: int | str) -> float:
    if isinstance(observed, str):  # a point written by hand keeps its own instant
        return parse_timestamp(observed).timestamp()
    return observed / 1e9


def get_series_tail(
    db: StoreDatabase,
    run_id: str,
    key: str,
    *,
    stage: str | None = None,
    after_seq: int = 0,
    limit: int | None = None,
    project: str | None = None,
) -> SeriesTail:
    """`key`'s points in run `run_id` (within the stage named `stage`, its batches and samples
    included) captured after position `after_seq` (0: all of them), at most `limit`. Reads nothing
    but the series rows when nothing is new. A key the run (stage) never recorded gives an empty tail:
    a live view may watch a series before its first point."""
    if not isinstance(after_seq, int) or after_seq < 0:
        raise ValidationError(
            f"after_seq must be a whole number >= 0, got {after_seq!r}", code="cursor_invalid"
        )
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValidationError(f"limit must be a whole number >= 1, got {limit!r}", code="limit_invalid")
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        stage_ref = None if stage is None else find_stage_ref(connection, run, stage)
        return _tail(connection, run.run_id, stage, key, run.execution_id, stage_ref, after_seq, limit)


def _tail(
    connection: sqlite3.Connection,
    run_id: str,
    stage: str | None,
    key: str,
    execution_id: str,
    stage_ref: str | None,
    after_seq: int,
    limit: int | None,
) -> SeriesTail:
    rows = select_series(connection, execution_id=execution_id, key=key, stage_ref=stage_ref)
    newer = [row for row in rows if row.last_seq > after_seq]
    empty = SeriesTail(run_id, stage, key, after_seq, after_seq, (), (), ())
    if not newer:
        return empty
    columns = load_columns(connection, newer, after_seq=after_seq or None)
    start = bisect_right(columns.seqs, after_seq)
    end = len(columns.seqs) if limit is None else min(len(columns.seqs), start + limit)
    if start >= end:
        return empty
    return SeriesTail(
        run_id,
        stage,
        key,
        after_seq,
        columns.seqs[end - 1],
        tuple(None if step == NO_STEP else step for step in columns.steps[start:end]),
        tuple(_seconds(observed) for observed in columns.observed[start:end]),
        tuple(columns.values[start:end]),
        truncated=end < len(columns.seqs),
        seqs=tuple(columns.seqs[start:end]),
    )


def get_run_states(db: StoreDatabase) -> list[RunState]:
    """Every run execution's id, status, end and whether it is archived, in the order stored: one
    narrow query, cheap enough to diff on every change of a store of ten thousand runs."""
    with reading(db) as connection:
        rows = connection.execute(
            "SELECT execution_id, run_ref, execution_number, latest, status, ended_at, archived_at "
            "FROM runs ORDER BY rowid"
        ).fetchall()
        # Only open runs gain series; the series table's unique index leads with the execution id.
        # (The pair is joined by a unit separator, which neither refs nor keys may hold; written as
        # the character itself, as SQLite and PostgreSQL both read a string literal.)
        counts = dict(
            connection.execute(
                "SELECT execution_id, count(DISTINCT stage_ref || '\x1f' || key) FROM metric_series "
                "WHERE execution_id IN (SELECT execution_id FROM runs WHERE status = 'open') "
                "AND sample_ref = '' AND deployment_ref = '' GROUP BY execution_id"
            ).fetchall()
        )
    return [
        RunState(
            run_ref if latest else f"{run_ref}@{number}",
            execution_id,
            status,
            ended_at,
            archived is not None,
            counts.get(execution_id, 0) if status == "open" else None,
        )
        for execution_id, run_ref, number, latest, status, ended_at, archived in rows
    ]


@dataclass(frozen=True, slots=True)
class FieldNames(ReadModel):
    """The fields a run table can show as columns, as a filter names them: `params.PATH` for each
    leaf of the latest executions' config_snapshot and `metrics.KEY` for each metric key captured
    outside samples (each list sorted, at most `limit` long)."""

    params: tuple[str, ...]
    metrics: tuple[str, ...]


def _field_segment(name: str) -> str:
    return f"`{name}`" if any(character in name for character in ".:` ") else name


def _leaf_paths(value: Any, prefix: str, into: set[str], limit: int) -> None:
    if len(into) >= limit:
        return
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _leaf_paths(inner, f"{prefix}.{_field_segment(str(key))}", into, limit)
    else:
        into.add(prefix)


def get_field_names(db: StoreDatabase, *, limit: int = 500) -> FieldNames:
    """The `params.` and `metrics.` fields of the store's runs (see `FieldNames`)."""
    params: set[str] = set()
    with reading(db) as connection:
        for (snapshot,) in connection.execute(
            "SELECT config_snapshot FROM runs WHERE latest = 1 AND config_snapshot IS NOT NULL"
        ):
            value = orjson.loads(snapshot)
            if isinstance(value, dict):
                for key, inner in value.items():
                    _leaf_paths(inner, f"params.{_field_segment(str(key))}", params, limit)
            if len(params) >= limit:
                break
        keys = [
            key
            for (key,) in connection.execute(
                "SELECT DISTINCT key FROM metric_series WHERE sample_ref = '' ORDER BY key LIMIT ?", (limit,)
            )
        ]
    metrics = tuple(f"metrics.{key}" if "`" not in key else f"metrics.`{key}`" for key in keys)
    return FieldNames(tuple(sorted(params)[:limit]), metrics)


@dataclass(frozen=True, slots=True)
class RunEvent(ReadModel):
    """An event captured in a run: where (the stage's name, the sample's ref), when, and what."""

    seq: int
    observed_at: str
    event_key: str
    level: str
    message: str
    attributes: dict[str, Any] | None
    stage: str | None
    sample_ref: str | None


def get_run_events(
    db: StoreDatabase, run_id: str, *, limit: int = 1000, project: str | None = None
) -> tuple[list[RunEvent], int]:
    """The run's first `limit` events in capture order, and how many it has in all."""
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        (total,) = connection.execute(
            "SELECT count(*) FROM records WHERE execution_id = ? AND record_type = 'event'",
            (run.execution_id,),
        ).fetchone()
        rows = connection.execute(
            "SELECT records.seq, records.observed_at, records.key, records.document, "
            "coalesce(stages.display_name, stages.name), records.sample_ref FROM records "
            "LEFT JOIN stages ON stages.execution_id = records.execution_id "
            "AND stages.stage_ref = records.stage_ref "
            "WHERE records.execution_id = ? AND records.record_type = 'event' ORDER BY records.seq LIMIT ?",
            (run.execution_id, limit),
        ).fetchall()
    events = []
    for seq, observed_at, key, document, stage, sample in rows:
        payload = orjson.loads(document).get("payload", {}) if document else {}
        attributes = payload.get("attributes")
        events.append(
            RunEvent(
                seq,
                observed_at,
                key,
                str(payload.get("level", "info")),
                str(payload.get("message") or ""),
                attributes if isinstance(attributes, dict) else None,
                stage,
                sample,
            )
        )
    return events, int(total)
