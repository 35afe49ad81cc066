"""Metric points as table columns, one row per point, read straight from the store's arrays.

A series read from the store is already columns of machine numbers (`store.MetricColumns`): values,
steps, observation times in epoch nanoseconds, and each point's series. The table keeps them so
(`NumberColumn`, `TimeColumn`) and names each point's run, stage, key, batch and sample through its
series (`CodedColumn`), so a million points become a table without a million Python objects.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from contexta.contract._timestamps import format_ns
from contexta.query._frames import CodedColumn, ColumnType, NumberColumn, TimeColumn
from contexta.store import MetricColumns, SeriesPoints

__all__ = ["POINT_COLUMN_TYPES", "point_columns"]

POINT_COLUMN_TYPES: Mapping[str, ColumnType] = {
    "run_id": "string",
    "stage": "string",  # the stage's name as typed; null for points captured on the run itself
    "metric_key": "string",
    "step": "int64",  # null for a point captured without a step
    "value": "float64",  # NaN and the infinities kept
    "observed_at": "timestamp",
    "batch_id": "string",  # the batch ref, for points captured inside a batch
    "sample_id": "string",  # the sample ref, for points captured on a sample
}


def point_columns(
    run_id: str, columns: MetricColumns | None, stage_names: Mapping[str, str]
) -> dict[str, Sequence[Any]]:
    """One row per point of `columns`, in their order (see `POINT_COLUMN_TYPES`)."""
    if columns is None or not len(columns):
        return {name: [] for name in POINT_COLUMN_TYPES}
    rows = columns.series_rows
    series = columns.series
    stages = [
        None if row.stage_ref is None else stage_names.get(row.stage_ref, row.stage_ref.rpartition(".")[2])
        for row in rows
    ]
    values = columns.values
    observed = columns.observed
    return {
        "run_id": CodedColumn.repeated(run_id, len(columns)),
        "stage": CodedColumn(series, stages),
        "metric_key": CodedColumn(series, [row.key for row in rows]),
        "step": NumberColumn(columns.steps, SeriesPoints.NO_STEP),
        "value": NumberColumn(values) if isinstance(values, array) else list(values),
        # Hand-written points keep the text they were given; captured ones are epoch nanoseconds.
        "observed_at": (
            TimeColumn(observed)
            if isinstance(observed, array)
            else [text if type(text) is str else format_ns(text) for text in observed]
        ),
        "batch_id": CodedColumn(series, [row.batch_ref for row in rows]),
        "sample_id": CodedColumn(series, [row.sample_ref for row in rows]),
    }
