"""Which metric keys a run recorded where, and the `NotFoundError` for a key it did not record there:
naming the closest keys (a typo) or the places the key was recorded (a wrong stage), so asking for a
metric that is not there is an answer, not an empty series."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence

from contexta.errors import NotFoundError
from contexta.query._models import RunRecord
from contexta.query._suggest import closest_names, unknown_name_hint

__all__ = ["missing_metric_error", "recorded_keys", "unrecorded_across_runs"]


def recorded_keys(connection: sqlite3.Connection, execution_ids: Iterable[str]) -> dict[str, set[str | None]]:
    """Every metric key the executions recorded -> the stage refs it was recorded in (None: on the run
    itself), keys in the order first captured."""
    found: dict[str, set[str | None]] = {}
    for execution_id in execution_ids:
        rows = connection.execute(
            "SELECT key, stage_ref FROM metric_series WHERE execution_id = ? ORDER BY first_seq",
            (execution_id,),
        )
        for key, stage_ref in rows:
            found.setdefault(key, set()).add(stage_ref or None)
    return found


def missing_metric_error(
    key: str,
    where: str,
    recorded: Mapping[str, set[str | None]],
    stage_names: Mapping[str, str],
) -> NotFoundError:
    """`NotFoundError(metric_not_found)` for `key`, absent from `where` (`run 'run:p.r'`, `stage
    'train' of run 'run:p.r'`, `any of the 3 runs`): the places it was recorded when it was, else the
    closest keys (or the keys recorded, when none is close)."""
    places = recorded.get(key)
    if places:
        named = sorted(
            {
                "the run itself"
                if stage is None
                else f"stage {stage_names.get(stage, stage.rpartition('.')[2])!r}"
                for stage in places
            }
        )
        hint = f"it was recorded in {', '.join(named)}"
    else:
        hint = unknown_name_hint(key, recorded, "metrics recorded")
    return NotFoundError(
        f"no metric {key!r} was recorded in {where}; {hint}",
        code="metric_not_found",
        details={"metric_key": key, "closest": closest_names(key, recorded)},
    )


def unrecorded_across_runs(
    connection: sqlite3.Connection, key: str, stage: str | None, runs: Sequence[RunRecord]
) -> NotFoundError:
    """The error for a key none of the runs looked at has a value of (in the stage named `stage`): a
    question across runs about a metric no run has is a misspelt key or stage, and saying so beats an
    empty answer (a CI job of alert rules would otherwise pass on a typo)."""
    named = f"run {runs[0].run_id!r}" if len(runs) == 1 else f"any of the {len(runs)} runs"
    where = named if stage is None else f"stage {stage!r} of {named}"
    recorded = recorded_keys(connection, [run.execution_id for run in runs if run.execution_id is not None])
    return missing_metric_error(key, where, recorded, {})
