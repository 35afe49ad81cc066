"""The samples of a run as a table: one row per sample with its status, why it ended, the metrics it
recorded and the messages of its events, so a failed evaluation case is seen with its values, not
only its name.

`SampleTable.table_columns()` is the table column by column; as a `Tabular` it turns into Arrow,
pandas, polars or a file from those (`to_arrow()`, `write(...)`). Rows are in the order the samples
were observed, and `sorted_by("-metrics.latency.ms")` reorders them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from contexta.errors import NotFoundError, ValidationError
from contexta.query._frames import ColumnType, Tabular
from contexta.query._models import ReadModel
from contexta.query._suggest import unknown_name_hint

__all__ = ["FAILED_STATUS", "SAMPLE_ROW_COLUMNS", "SampleRow", "SampleTable"]

FAILED_STATUS = "failed"
METRIC_COLUMN_PREFIX = "metrics."
# The columns every sample table has, in order, and their types; `metrics.<key>` columns (float64)
# follow, then `events` (json: a list of messages per sample).
_ROW_COLUMN_TYPES: dict[str, ColumnType] = {
    "sample_id": "string",
    "name": "string",
    "stage_name": "string",
    "batch_name": "string",
    "status": "string",
    "end_reason": "string",
    "observed_at": "timestamp",
    "ended_at": "timestamp",
}
SAMPLE_ROW_COLUMNS = tuple(_ROW_COLUMN_TYPES)


@dataclass(frozen=True, slots=True)
class SampleRow(ReadModel):
    """One sample: where it ran, how it ended, the value it recorded last for each metric key, and the
    message of each event recorded in it (the `sample.failed` event holds its exception), in order."""

    sample_id: str
    name: str
    stage_name: str
    batch_name: str | None
    status: str | None
    end_reason: str | None
    observed_at: str
    ended_at: str | None
    metrics: dict[str, float | int]
    events: list[str]

    @property
    def failed(self) -> bool:
        return self.status == FAILED_STATUS


def _column_value(row: SampleRow, column: str) -> Any:
    if column.startswith(METRIC_COLUMN_PREFIX):
        return row.metrics.get(column.removeprefix(METRIC_COLUMN_PREFIX))
    return getattr(row, column)


def _orderable(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True, slots=True)
class SampleTable(ReadModel, Tabular):
    """A run's samples (of one stage, when `stage_name` is given; only the failed ones with
    `failed_only`). `metric_keys` are the keys any row recorded, in the order first captured."""

    run_id: str
    stage_name: str | None
    failed_only: bool
    metric_keys: tuple[str, ...]
    rows: tuple[SampleRow, ...]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def failed_count(self) -> int:
        return sum(1 for row in self.rows if row.failed)

    def column_names(self) -> list[str]:
        """Every column of `table_columns()`, in order: `run_id` first, so tables of several runs
        stacked into one export still say whose each sample was."""
        return [
            "run_id",
            *SAMPLE_ROW_COLUMNS,
            *(f"{METRIC_COLUMN_PREFIX}{key}" for key in self.metric_keys),
            "events",
        ]

    def table_columns(self) -> dict[str, list[Any]]:
        """Column name -> one value per row, in order: the sample's fields, a `metrics.<key>` column
        per metric key (None where a sample did not record it), then `events` (a list per row)."""
        return {
            column: [self.run_id] * len(self.rows)
            if column == "run_id"
            else [_column_value(row, column) for row in self.rows]
            for column in self.column_names()
        }

    def column_types(self) -> Mapping[str, ColumnType]:
        """Fixed types, so an export keeps its shape whatever the samples held: metric values are
        float64 (an int metric too, NaN kept), instants timestamps, `events` JSON."""
        metrics: dict[str, ColumnType] = {
            f"{METRIC_COLUMN_PREFIX}{key}": "float64" for key in self.metric_keys
        }
        return {"run_id": "string", **_ROW_COLUMN_TYPES, **metrics, "events": "json"}

    def with_metric_keys(self, metric_keys: tuple[str, ...]) -> SampleTable:
        """The same rows with a `metrics.<key>` column for each of `metric_keys` (None where a sample
        did not record the key): how tables of runs that recorded different keys line up to be
        stacked into one export."""
        return replace(self, metric_keys=metric_keys)

    def sorted_by(self, column: str) -> SampleTable:
        """The table with its rows ordered by `column` (any of `column_names()`; a leading `-` sorts
        from the largest). Rows without a value there (or with NaN) come last either way; ties keep
        their order."""
        if not isinstance(column, str) or not column.lstrip("-"):
            raise ValidationError(
                f"sort by a column name such as -metrics.latency.ms, got {column!r}", code="sort_invalid"
            )
        descending = column.startswith("-")
        name = column.removeprefix("-")
        columns = self.column_names()
        sortable = [known for known in columns if known != "events"]
        if name not in sortable:
            hint = unknown_name_hint(name, sortable, "its columns", len(sortable))
            raise NotFoundError(
                f"the sample table has no sortable column {name!r}; {hint}",
                code="sample_column_not_found",
                details={"column": name},
            )
        present = [row for row in self.rows if _orderable(_column_value(row, name))]
        absent = [row for row in self.rows if not _orderable(_column_value(row, name))]
        present.sort(key=lambda row: _column_value(row, name), reverse=descending)
        return replace(self, rows=(*present, *absent))
