"""One run's value of one metric, as trends plot it and alert rules compare it.

A trend point and an alert observation are the same number (`observe`), so a rule that fires on a
run's `p95` of `latency` fires on exactly the value the trend of `latency` shows for that run. Stages
are matched across runs by name (refs differ between runs by construction).
"""

from __future__ import annotations

import math
import sqlite3
from typing import NamedTuple

from contexta.errors import ValidationError
from contexta.query._aggregations import STEP_AGGREGATIONS, Aggregation, aggregate
from contexta.query._resolve import refs_by_name
from contexta.store import load_columns, select_series

__all__ = ["Observation", "check_metric_key", "check_stage_name", "observe", "stage_refs_named"]


class Observation(NamedTuple):
    """A run's aggregated value of a metric, the step of the point it is (when it is one point's
    value and that point had a step), and how many points were aggregated."""

    value: float | int
    step: int | None
    point_count: int


def check_metric_key(key: object) -> str:
    """`key` when it can name a metric; `ValidationError(metric_key_invalid)` otherwise."""
    if not isinstance(key, str) or not key:
        raise ValidationError(
            f"metric key must be a non-empty string, got {key!r}", code="metric_key_invalid"
        )
    return key


def check_stage_name(stage: object) -> str | None:
    """`stage` when it is None or can name a stage; `ValidationError(name_invalid)` otherwise."""
    if stage is not None and (not isinstance(stage, str) or not stage):
        raise ValidationError(
            f"stage must be a stage's name (a non-empty string) or None, got {stage!r}", code="name_invalid"
        )
    return stage


def stage_refs_named(connection: sqlite3.Connection, execution_id: str, name: str) -> list[str]:
    """The refs of the execution's stages called `name` (as typed, else by their ref component)."""
    rows = connection.execute(
        "SELECT stage_ref, display_name FROM stages WHERE execution_id = ?", (execution_id,)
    ).fetchall()
    return refs_by_name([(row[0], row[1]) for row in rows], name)


def recorded_anywhere(connection: sqlite3.Connection, key: str, stage: str | None) -> bool:
    """Whether any run in the store recorded `key` (in a stage called `stage`, when given): what
    tells a metric some runs have not reached yet (no data) from a misspelt key or stage (an error)."""
    rows = connection.execute(
        "SELECT DISTINCT execution_id, stage_ref FROM metric_series WHERE key = ? AND deployment_ref = ''",
        (key,),
    ).fetchall()
    if stage is None:
        return bool(rows)
    by_execution: dict[str, set[str]] = {}
    for execution_id, stage_ref in rows:
        by_execution.setdefault(execution_id, set()).add(stage_ref)
    return any(
        refs.intersection(stage_refs_named(connection, execution_id, stage))
        for execution_id, refs in by_execution.items()
    )


def observe(
    connection: sqlite3.Connection,
    execution_id: str,
    key: str,
    stage_refs: list[str] | None,
    aggregation: Aggregation,
) -> Observation | None:
    """The execution's `aggregation` of `key` over its points in the stages `stage_refs` (their
    batches and samples included), or over all its points (None); None when it has no such point.

    `count` reads only the series' summaries; `latest` reads the points of the one series captured
    last (for its step); the others read every point of the key there.
    """
    if stage_refs is None:
        series = select_series(connection, execution_id=execution_id, key=key)
    else:  # one stage name may (rarely) be several stages of the run: their points in capture order
        series = sorted(
            (
                row
                for stage_ref in stage_refs
                for row in select_series(connection, execution_id=execution_id, key=key, stage_ref=stage_ref)
            ),
            key=lambda row: row.first_seq,
        )
    if not series:
        return None
    total = sum(row.point_count for row in series)
    if aggregation == "count":
        return Observation(total, None, total)
    if aggregation == "latest":
        last = max(series, key=lambda row: row.last_seq)
        columns = load_columns(connection, [last])
        return Observation(last.last_value, columns.step(len(columns) - 1) if len(columns) else None, total)
    columns = load_columns(connection, series)
    values = columns.values
    if not values:  # series rows whose points are gone: nothing to aggregate
        return None
    value = aggregate(values, aggregation)
    step = None
    if aggregation in STEP_AGGREGATIONS and not math.isnan(value):  # min / max of a series without NaN
        step = columns.step(values.index(value))
    return Observation(value, step, total)
