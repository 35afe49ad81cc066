"""A run's metric history: every point of every metric key (or of those asked for) as one tidy table,
like W&B's `run.history()` or MLflow's `get_metric_history`, but long rather than wide: one row per
point, so keys logged at different steps need no alignment and nothing is filled in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contexta.errors import NotFoundError, ValidationError
from contexta.query._fetch import fetch_metric_points
from contexta.query._frames import ColumnType, StackedTable, Tabular
from contexta.query._metric_names import missing_metric_error, recorded_keys
from contexta.query._models import MetricSeries
from contexta.query._point_columns import POINT_COLUMN_TYPES
from contexta.query._reading import reading
from contexta.query._resolve import find_run, find_stage_ref
from contexta.store import StoreDatabase, select_series

__all__ = ["MetricHistory", "metric_history"]


@dataclass(frozen=True, slots=True)
class MetricHistory(Tabular):
    """A run's metric series, one per key, in the order each key was first captured. As a table,
    one row per point (columns in `POINT_COLUMN_TYPES`): the first key's points in capture order, then
    the next key's. `history["loss"]` is one key's `MetricSeries`."""

    run_id: str
    series: tuple[MetricSeries, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(series.metric_key for series in self.series)

    def __getitem__(self, key: str) -> MetricSeries:
        for series in self.series:
            if series.metric_key == key:
                return series
        raise NotFoundError(
            f"the history of {self.run_id} has no metric {key!r} "
            f"(its keys: {', '.join(self.keys) or 'none'})",
            code="metric_not_found",
        )

    @property
    def row_count(self) -> int:
        """How many points the history holds, over all its keys (one row each)."""
        return sum(len(series.points) for series in self.series)

    def table_columns(self) -> Mapping[str, Sequence[Any]]:
        if not self.series:
            return {name: [] for name in POINT_COLUMN_TYPES}
        return StackedTable(self.series).table_columns()

    def column_types(self) -> Mapping[str, ColumnType]:
        return POINT_COLUMN_TYPES

    def _repr_html_(self) -> str:
        """Jupyter's rendering: a chart per key (up to a limit), then the first points."""
        from contexta.reports import notebook_series_html

        return notebook_series_html(f"Metric history of {self.run_id}", self.series)


def _checked_keys(keys: str | Sequence[str] | None) -> list[str] | None:
    if keys is None:
        return None
    chosen = [keys] if isinstance(keys, str) else list(keys)
    bad = [key for key in chosen if not isinstance(key, str) or not key]
    if bad:
        raise ValidationError(
            f"keys must be metric keys (non-empty strings), got {bad[0]!r}", code="metric_key_invalid"
        )
    return list(dict.fromkeys(chosen))


def metric_history(
    db: StoreDatabase,
    run_id: str,
    keys: str | Sequence[str] | None = None,
    stage: str | None = None,
    *,
    project: str | None = None,
) -> MetricHistory:
    """Every point a run captured of `keys` (default: every key, in the order each was first captured),
    optionally only inside one stage (its batches and samples included), as one `MetricHistory`: a
    table of one row per point. A key the run recorded elsewhere than in `stage` gives an empty
    series; one it never recorded raises `NotFoundError(metric_not_found)` naming the closest keys."""
    wanted = _checked_keys(keys)
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        stage_ref = None if stage is None else find_stage_ref(connection, run, stage)
        if wanted is None:
            rows = select_series(connection, execution_id=run.execution_id, stage_ref=stage_ref)
            wanted = list(dict.fromkeys(row.key for row in rows))
        else:
            recorded = recorded_keys(connection, [run.execution_id])
            unknown = [key for key in wanted if key not in recorded]
            if unknown:
                raise missing_metric_error(unknown[0], f"run {run.run_id!r}", recorded, {})
        series = tuple(
            MetricSeries(run.run_id, key, fetch_metric_points(connection, run.execution_id, key, stage_ref))
            for key in wanted
        )
    return MetricHistory(run.run_id, series)
