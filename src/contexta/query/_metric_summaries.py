"""`get_metric_summaries`: every metric of a run per stage at a glance, what `contexta run show` and
`contexta metrics` print: points outside samples as latest / min / max / count, values inside samples
as a `SampleAggregate`."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from contexta.contract._non_finite import is_finite_number
from contexta.query._fetch import fetch_stages
from contexta.query._models import MetricSummary
from contexta.query._reading import reading
from contexta.query._resolve import find_run
from contexta.query._sample_metrics import sample_aggregates
from contexta.query._sample_stats import SampleAggregate
from contexta.store import SeriesRow, StoreDatabase, load_columns, select_series

__all__ = ["get_metric_summaries"]

Slot = tuple[str | None, str]  # (stage ref or None for the run itself, key)


def _summary(
    connection: sqlite3.Connection,
    slot: Slot,
    rows: list[SeriesRow],
    samples: SampleAggregate | None,
    stage_names: Mapping[str, str],
) -> MetricSummary:
    stage, key = slot
    non_finite = sum(row.non_finite_count for row in rows)
    values = load_columns(connection, rows).values if rows else []
    # Only a series holding NaN or an infinity pays for a Python-level filter; min and max run in C.
    finite = [value for value in values if is_finite_number(value)] if non_finite else values
    latest = max(rows, key=lambda row: row.last_seq).last_value if rows else None
    return MetricSummary(
        stage_id=stage,
        stage_name=None if stage is None else stage_names.get(stage, stage.rpartition(".")[2]),
        metric_key=key,
        point_count=sum(row.point_count for row in rows),
        latest=latest,
        min=min(finite) if finite else None,
        max=max(finite) if finite else None,
        non_finite_count=non_finite,
        samples=samples,
    )


def get_metric_summaries(
    db: StoreDatabase, run_id: str, *, project: str | None = None
) -> list[MetricSummary]:
    """One `MetricSummary` per (stage, key) the run recorded, in the order first captured: the run's
    own metrics are those with `stage_id` None. Reads the points captured outside samples (for their
    min and max) and only the series summaries of samples."""
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        stage_names = {stage.stage_id: stage.name for stage in fetch_stages(connection, run.execution_id)}
        plain: dict[Slot, list[SeriesRow]] = {}
        for row in select_series(connection, execution_id=run.execution_id):  # by first capture
            slot = (row.stage_ref, row.key)
            rows = plain.setdefault(slot, [])
            if row.sample_ref is None:
                rows.append(row)
        aggregates = {
            (aggregate.stage_id, aggregate.metric_key): aggregate
            for aggregate in sample_aggregates(connection, run.execution_id, stage_names)
        }
        return [
            _summary(connection, slot, rows, aggregates.get((slot[0] or "", slot[1])), stage_names)
            for slot, rows in plain.items()
        ]
