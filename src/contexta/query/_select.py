"""Choosing the best of several runs by one metric."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from contexta.contract._non_finite import decode_metric_value, is_finite_number
from contexta.contract._refs import normalize_name
from contexta.errors import ValidationError
from contexta.query._fetch import consistent_read, fetch_runs
from contexta.query._resolve import check_run_ids, find_run_refs
from contexta.store._database import StoreDatabase

__all__ = ["latest_metric_value", "select_best_run"]


def latest_metric_value(
    connection: sqlite3.Connection, run_ref: str, metric_key: str, stage_ref: str | None = None
) -> float | int | None:
    """The value of `metric_key` captured last in the run (or in one stage of it), or None."""
    sql = "SELECT last_value FROM metric_series WHERE run_ref = ? AND key = ?"
    parameters = [run_ref, metric_key]
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
    """The ref of the run whose latest `metric_key` (within the stage `stage_name`, when given) is best.

    Runs without the metric are skipped, and so are runs whose latest value is NaN or infinite (a
    diverged run never wins, and NaN compares with nothing); a tie goes to the run that started
    first; None when no run has a finite value. Ids are full refs or bare run names.
    """
    check_run_ids(run_ids)
    if not isinstance(metric_key, str) or not metric_key:
        raise ValidationError(
            f"metric key must be a non-empty string, got {metric_key!r}", code="metric_key_invalid"
        )
    stage = None if stage_name is None else normalize_name(stage_name, "stage name")
    with consistent_read(db) as connection:
        run_refs = find_run_refs(connection, run_ids, project, needed_for=None)
        if not run_refs:
            return None
        candidates: list[tuple[float | int, str]] = []
        for run in fetch_runs(connection, run_refs=run_refs):  # oldest first: ties keep the first
            stage_ref = None if stage is None else f"stage:{run.run_id.partition(':')[2]}.{stage}"
            value = latest_metric_value(connection, run.run_id, metric_key, stage_ref)
            if value is not None and is_finite_number(value):
                candidates.append((value, run.run_id))
    if not candidates:
        return None
    best_value, best_run = candidates[0]
    for value, run_ref in candidates[1:]:
        if (value > best_value) if higher_is_better else (value < best_value):
            best_value, best_run = value, run_ref
    return best_run
