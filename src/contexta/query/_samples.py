"""`get_sample_table`: a run's samples with their status, metrics and event messages, read in one
consistent view (see `_sample_table.py` for the table itself)."""

from __future__ import annotations

import sqlite3
from typing import Any

from contexta.query._fetch import fetch_batches, fetch_samples, fetch_stages
from contexta.query._reading import reading
from contexta.query._resolve import find_run, find_stage_ref
from contexta.query._sample_metrics import sample_values
from contexta.query._sample_table import FAILED_STATUS, SampleRow, SampleTable
from contexta.store import StoreDatabase

__all__ = ["get_sample_table"]


def _event_messages(
    connection: sqlite3.Connection, execution_id: str, stage_ref: str | None
) -> dict[str, list[str]]:
    """sample ref -> the messages of the events recorded in it (the event key where it has none), in
    capture order."""
    sql = (
        "SELECT sample_ref, coalesce(document ->> '$.payload.message', key) FROM records "
        "WHERE execution_id = ? AND record_type = 'event' AND sample_ref IS NOT NULL"
    )
    parameters: list[Any] = [execution_id]
    if stage_ref is not None:
        sql += " AND stage_ref = ?"
        parameters.append(stage_ref)
    messages: dict[str, list[str]] = {}
    for sample_ref, message in connection.execute(sql + " ORDER BY seq", parameters):
        messages.setdefault(sample_ref, []).append(str(message))
    return messages


def get_sample_table(
    db: StoreDatabase,
    run_id: str,
    stage: str | None = None,
    *,
    failed_only: bool = False,
    project: str | None = None,
) -> SampleTable:
    """The run's samples (of the stage `stage`, a name or ref, when given) in the order they were
    observed, each with its status, why it ended, the value it recorded last per metric key and its
    events' messages; with `failed_only`, only the samples whose status is `failed`.

    An unknown stage raises `NotFoundError(stage_not_found)` naming the closest stages.
    """
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        stage_ref = None if stage is None else find_stage_ref(connection, run, stage)
        stages = fetch_stages(connection, run.execution_id)
        stage_names = {record.stage_id: record.name for record in stages}
        batch_names = {batch.batch_id: batch.name for batch in fetch_batches(connection, run.execution_id)}
        samples = fetch_samples(connection, run.execution_id, stage_ref)
        if failed_only:
            samples = [sample for sample in samples if sample.status == FAILED_STATUS]
        metrics: dict[str, dict[str, float | int]] = {}
        for value in sample_values(connection, run.execution_id, stage_ref=stage_ref):
            metrics.setdefault(value.sample_ref, {})[value.key] = value.value
        events = _event_messages(connection, run.execution_id, stage_ref)
    rows = tuple(
        SampleRow(
            sample_id=sample.sample_id,
            name=sample.name,
            stage_name=stage_names.get(sample.stage_id or "", (sample.stage_id or "").rpartition(".")[2]),
            batch_name=None
            if sample.batch_id is None
            else batch_names.get(sample.batch_id, sample.batch_id.rpartition(".")[2]),
            status=sample.status,
            end_reason=sample.end_reason,
            observed_at=sample.observed_at,
            ended_at=sample.ended_at,
            metrics=metrics.get(sample.sample_id, {}),
            events=events.get(sample.sample_id, []),
        )
        for sample in samples
    )
    keys = dict.fromkeys(key for row in rows for key in row.metrics)
    return SampleTable(
        run_id=run.run_id,
        stage_name=None if stage_ref is None else stage_names.get(stage_ref),
        failed_only=bool(failed_only),
        metric_keys=tuple(keys),
        rows=rows,
    )
