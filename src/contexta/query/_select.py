"""Choosing the best of several runs by one metric.

A run is judged by one number: the latest value of the metric captured outside samples, or, for a
metric recorded inside samples (one value per evaluation case), a statistic of those values (`mean`
by default: the share of ones for a `correct` metric). The direction is given, or inferred from the
key (`_direction.py`). `find_best_run` says which number and direction it used; `select_best_run`
is its SPEC §9 form, which answers with the run's name only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from contexta.contract._non_finite import decode_metric_value, is_finite_number
from contexta.errors import NotFoundError, ValidationError
from contexta.query._direction import infer_higher_is_better
from contexta.query._fetch import fetch_runs, fetch_stages
from contexta.query._metric_names import missing_metric_error, recorded_keys
from contexta.query._models import BestRun, RunRecord
from contexta.query._reading import reading
from contexta.query._resolve import check_run_ids, find_runs, refs_by_name
from contexta.query._sample_metrics import sample_values
from contexta.query._sample_stats import SAMPLE_AGGREGATES, check_aggregate, summarise
from contexta.query._suggest import did_you_mean
from contexta.store import StoreDatabase

__all__ = ["BEST_RUN_AGGREGATES", "LATEST", "find_best_run", "latest_metric_value", "select_best_run"]

LATEST = "latest"  # the aggregate that judges a run by the value captured last outside samples
# Every aggregate `find_best_run` takes (the command line's choices).
BEST_RUN_AGGREGATES: tuple[str, ...] = (LATEST, *SAMPLE_AGGREGATES)
_DEFAULT_SAMPLE_AGGREGATE = "mean"


def latest_metric_value(
    connection: sqlite3.Connection, execution_id: str, metric_key: str, stage_ref: str | None = None
) -> float | int | None:
    """The value of `metric_key` captured last outside samples in a run execution (or in one stage of
    it), or None."""
    sql = "SELECT last_value FROM metric_series WHERE execution_id = ? AND key = ? AND sample_ref = ''"
    parameters = [execution_id, metric_key]
    if stage_ref is not None:
        sql += " AND stage_ref = ?"
        parameters.append(stage_ref)
    row = connection.execute(sql + " ORDER BY last_seq DESC LIMIT 1", parameters).fetchone()
    value: float | int | None = None if row is None else decode_metric_value(row[0])
    return value


def _check_arguments(
    metric_key: object, stage_name: object, aggregate: object, higher_is_better: object
) -> str | None:
    """The aggregate asked for (None: choose by what the runs recorded), once every argument holds."""
    if not isinstance(metric_key, str) or not metric_key:
        raise ValidationError(
            f"metric key must be a non-empty string, got {metric_key!r}", code="metric_key_invalid"
        )
    if stage_name is not None and not isinstance(stage_name, str):
        raise ValidationError(f"stage_name must be a string, got {stage_name!r}", code="name_invalid")
    if higher_is_better is not None and not isinstance(higher_is_better, bool):
        raise ValidationError(
            f"higher_is_better must be True, False or None (infer it from the key), got {higher_is_better!r}",
            code="direction_invalid",
        )
    if aggregate is not None and aggregate not in BEST_RUN_AGGREGATES:
        raise ValidationError(
            f"aggregate must be one of {', '.join(BEST_RUN_AGGREGATES)}, got {aggregate!r}",
            code="aggregate_invalid",
        )
    return None if aggregate is None else str(aggregate)


def _stage_named(connection: sqlite3.Connection, execution_id: str, stage_name: str) -> str | None:
    """The ref of the execution's stage called `stage_name` (as typed, or by its ref component)."""
    rows = connection.execute(
        "SELECT stage_ref, display_name FROM stages WHERE execution_id = ?", (execution_id,)
    ).fetchall()
    matches = refs_by_name([(row[0], row[1]) for row in rows], stage_name)
    return matches[0] if matches else None


def _has_plain_values(
    connection: sqlite3.Connection, stage_refs: Sequence[str | None], execution_ids: list[str], key: str
) -> bool:
    """Whether any of the executions (within its stage, where one is given) recorded `key` outside
    samples: then runs are judged by their latest value, else by their samples."""
    for execution_id, stage_ref in zip(execution_ids, stage_refs, strict=True):
        sql = "SELECT 1 FROM metric_series WHERE execution_id = ? AND key = ? AND sample_ref = ''"
        parameters = [execution_id, key]
        if stage_ref is not None:
            sql += " AND stage_ref = ?"
            parameters.append(stage_ref)
        if connection.execute(sql + " LIMIT 1", parameters).fetchone() is not None:
            return True
    return False


def _value(
    connection: sqlite3.Connection, execution_id: str, key: str, stage_ref: str | None, aggregate: str
) -> float | int | None:
    if aggregate == LATEST:
        return latest_metric_value(connection, execution_id, key, stage_ref)
    values = [found.value for found in sample_values(connection, execution_id, stage_ref=stage_ref, key=key)]
    if not values:
        return None
    return summarise(values, stage_id=stage_ref or "", stage_name="", metric_key=key).value(
        check_aggregate(aggregate)
    )


def _nothing_to_choose(
    connection: sqlite3.Connection,
    runs: list[RunRecord],
    metric_key: str,
    stage_name: str | None,
    aggregate: str,
) -> NotFoundError:
    """Why no run could be chosen: no run has the stage, the key, or a finite value of it."""
    executions = [run.execution_id for run in runs if run.execution_id is not None]
    among = "the run" if len(runs) == 1 else f"any of the {len(runs)} runs"
    stage_names = {
        stage.stage_id: stage.name
        for execution in executions
        for stage in fetch_stages(connection, execution)
    }
    if stage_name is not None and not any(
        _stage_named(connection, execution, stage_name) for execution in executions
    ):
        names = list(dict.fromkeys(stage_names.values()))
        return NotFoundError(
            f"no stage named {stage_name!r} in {among}; {did_you_mean(stage_name, names)}"
            f"stages there: {', '.join(names) or 'none'}",
            code="stage_not_found",
            details={"stage": stage_name},
        )
    recorded = recorded_keys(connection, executions)
    where = among if stage_name is None else f"a stage named {stage_name!r} of {among}"
    places = recorded.get(metric_key)
    in_stage = places and (
        stage_name is None
        or any(stage is not None and stage_names.get(stage) == stage_name for stage in places)
    )
    if not in_stage:
        return missing_metric_error(metric_key, where, recorded, stage_names)
    judged = "latest value" if aggregate == LATEST else f"{aggregate} over samples"
    return NotFoundError(
        f"no finite {judged} of metric {metric_key!r} in {where} (NaN and infinite values never win)",
        code="metric_not_found",
        details={"metric_key": metric_key},
    )


def find_best_run(
    db: StoreDatabase,
    run_ids: Iterable[str],
    metric_key: str,
    *,
    stage_name: str | None = None,
    higher_is_better: bool | None = None,
    aggregate: str | None = None,
    project: str | None = None,
) -> BestRun:
    """The run whose `metric_key` (within the stage `stage_name`, when given) is best, with the value
    that won and how it was judged.

    `aggregate` is `latest` (the value captured last outside samples) or a statistic of the values
    recorded inside samples (one of `SAMPLE_AGGREGATES`: `mean`, `p95`, `share`, ...); by default
    `latest` when any run recorded the key outside samples, else `mean`. `higher_is_better` None
    infers the direction from the key (losses, errors, latencies, times go down). Values that are NaN
    or infinite never win; a tie goes to the run that started first. `NotFoundError` when no run has
    the stage (`stage_not_found`) or a finite value of the key (`metric_not_found`), naming the
    closest names.
    """
    check_run_ids(run_ids)
    chosen = _check_arguments(metric_key, stage_name, aggregate, higher_is_better)
    direction = "given" if higher_is_better is not None else "inferred"
    higher = infer_higher_is_better(metric_key) if higher_is_better is None else higher_is_better
    with reading(db) as connection:
        targets = find_runs(connection, run_ids, project, needed_for="to choose from")
        runs = fetch_runs(connection, execution_ids=[run.execution_id for run in targets])  # oldest first
        executions = [run.execution_id for run in runs if run.execution_id is not None]
        stage_refs = [
            None if stage_name is None else _stage_named(connection, execution, stage_name)
            for execution in executions
        ]
        if chosen is None:
            plain = _has_plain_values(connection, stage_refs, executions, metric_key)
            chosen = LATEST if plain else _DEFAULT_SAMPLE_AGGREGATE
        candidates: list[tuple[float | int, str]] = []
        for run, execution, stage_ref in zip(runs, executions, stage_refs, strict=True):
            if stage_name is not None and stage_ref is None:
                continue
            value = _value(connection, execution, metric_key, stage_ref, chosen)
            if value is not None and is_finite_number(value):
                candidates.append((value, run.run_id))
        if not candidates:
            raise _nothing_to_choose(connection, runs, metric_key, stage_name, chosen)
    best_value, best_run = candidates[0]
    for value, run_ref in candidates[1:]:
        if (value > best_value) if higher else (value < best_value):
            best_value, best_run = value, run_ref
    return BestRun(
        run_id=best_run,
        metric_key=metric_key,
        stage_name=stage_name,
        value=best_value,
        aggregate=chosen,
        higher_is_better=higher,
        direction=direction,
        run_count=len(runs),
        candidate_count=len(candidates),
    )


def select_best_run(
    db: StoreDatabase,
    run_ids: Iterable[str],
    metric_key: str,
    *,
    stage_name: str | None = None,
    higher_is_better: bool | None = True,
    project: str | None = None,
    aggregate: str | None = None,
) -> str | None:
    """How queries name the run whose `metric_key` (within the stage `stage_name`, when given) is
    best: its ref, or `ref@n` for an earlier execution; None when no run has a finite value.

    Runs are judged by their latest value captured outside samples when any run recorded the key
    outside samples, else by the mean of the per-sample values; `aggregate` (`latest`, `mean`,
    `p50`, `p95`, `min`, `max`, `share`, `count`) chooses instead, and `higher_is_better=None` infers
    the direction from the key. `find_best_run` answers with the value and how it was judged. Runs
    without the metric are skipped, and so are NaN and infinite values (a diverged run never wins);
    a tie goes to the run that started first. Ids are full refs or bare run names (`@n` for an
    earlier execution).
    """
    check_run_ids(run_ids)
    _check_arguments(metric_key, stage_name, aggregate, higher_is_better)
    run_ids = list(run_ids)
    if not run_ids:
        return None
    try:
        best = find_best_run(
            db,
            run_ids,
            metric_key,
            stage_name=stage_name,
            higher_is_better=higher_is_better,
            aggregate=aggregate,
            project=project,
        )
    except NotFoundError as error:
        if error.code in ("metric_not_found", "stage_not_found"):
            return None
        raise
    return best.run_id
