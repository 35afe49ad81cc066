"""Choosing the best of several runs by one metric."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from contexta.contract._non_finite import decode_metric_value, is_finite_number
from contexta.errors import ValidationError
from contexta.query._fetch import fetch_runs
from contexta.query._reading import reading
from contexta.query._resolve import check_run_ids, find_runs, refs_by_name
from contexta.store import StoreDatabase

__all__ = ["latest_metric_value", "select_best_run"]


def latest_metric_value(
    connection: sqlite3.Connection, execution_id: str, metric_key: str, stage_ref: str | None = None
) -> float | int | None:
    """The value of `metric_key` captured last in a run execution (or in one stage of it), or None."""
    sql = "SELECT last_value FROM metric_series WHERE execution_id = ? AND key = ?"
    parameters = [execution_id, metric_key]
    if stage_ref is not None:
        sql += " AND stage_ref = ?"
        parameters.append(stage_ref)
    row = connection.execute(sql + " ORDER BY last_seq DESC LIMIT 1", parameters).fetchone()
    value: float | int | None = None if row is None else decode_metric_value(row[0])
    return value


def select_best_run(
    db: StoreDatabase,
    run_ids: Iterable[str],
    metric_key: str,
    *,
    stage_name: str | None = None,
    higher_is_better: bool = True,
    project: str | None = None,
) -> str | None:
    """How queries name the run whose latest `metric_key` (within the stage `stage_name`, when given)
    is best: its ref, or `ref@n` for an earlier execution.

    Runs without the metric are skipped, and so are runs whose latest value is NaN or infinite (a
    diverged run never wins, and NaN compares with nothing); a tie goes to the run that started
    first; None when no run has a finite value. Ids are full refs or bare run names (`@n` for an
    earlier execution).
    """
    check_run_ids(run_ids)
    if not isinstance(metric_key, str) or not metric_key:
        raise ValidationError(
            f"metric key must be a non-empty string, got {metric_key!r}", code="metric_key_invalid"
        )
    if stage_name is not None and not isinstance(stage_name, str):
        raise ValidationError(f"stage_name must be a string, got {stage_name!r}", code="name_invalid")
    with reading(db) as connection:
        runs = find_runs(connection, run_ids, project, needed_for=None)
        if not runs:
            return None
        candidates: list[tuple[float | int, str]] = []
        executions = [run.execution_id for run in runs]
        for run in fetch_runs(connection, execution_ids=executions):  # oldest first: ties keep the first
            assert run.execution_id is not None
            stage_ref = None if stage_name is None else _stage_named(connection, run.execution_id, stage_name)
            if stage_name is not None and stage_ref is None:
                continue
            value = latest_metric_value(connection, run.execution_id, metric_key, stage_ref)
            if value is not None and is_finite_number(value):
                candidates.append((value, run.run_id))
    if not candidates:
        return None
    best_value, best_run = candidates[0]
    for value, run_ref in candidates[1:]:
        if (value > best_value) if higher_is_better else (value < best_value):
            best_value, best_run = value, run_ref
    return best_run


def _stage_named(connection: sqlite3.Connection, execution_id: str, stage_name: str) -> str | None:
    """The ref of the execution's stage called `stage_name` (as typed, or by its ref component)."""
    rows = connection.execute(
        "SELECT stage_ref, display_name FROM stages WHERE execution_id = ?", (execution_id,)
    ).fetchall()
    matches = refs_by_name([(row[0], row[1]) for row in rows], stage_name)
    return matches[0] if matches else None
