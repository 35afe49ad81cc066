"""Lists of runs and samples as tidy tables: one row per run, or per sample, with every field of its
record (`RunRecord`, `SampleRecord`), typed explicitly so an export has the same columns whatever the
runs held. Mappings (tags, metadata, config, failures) are `json` columns."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contexta.query._frames import ColumnType, Tabular
from contexta.query._models import RunRecord, SampleRecord

__all__ = [
    "RUN_COLUMN_TYPES",
    "SAMPLE_COLUMN_TYPES",
    "RunRecordTable",
    "SampleRecordTable",
    "runs_table",
    "samples_table",
]

RUN_COLUMN_TYPES: Mapping[str, ColumnType] = {
    "run_id": "string",
    "project_name": "string",
    "name": "string",
    "status": "string",
    "started_at": "timestamp",
    "ended_at": "timestamp",
    "tags": "json",
    "metadata": "json",
    "dataset_ref": "string",
    "code_revision": "string",
    "config_snapshot": "json",
    "end_reason": "string",
    "failure": "json",
    "execution_id": "string",
    "execution_number": "int64",
    "latest": "bool",
}

SAMPLE_COLUMN_TYPES: Mapping[str, ColumnType] = {
    "run_id": "string",  # the run the sample belongs to: a table may hold the samples of several runs
    "sample_id": "string",
    "name": "string",
    "observed_at": "timestamp",
    "retention_class": "string",
    "redaction_profile": "string",
    "stage_id": "string",
    "batch_id": "string",
    "status": "string",
    "ended_at": "timestamp",
    "end_reason": "string",
    "failure": "json",
}


def _field_columns(records: Sequence[Any], names: Iterable[str]) -> dict[str, list[Any]]:
    return {name: [getattr(record, name) for record in records] for name in names}


@dataclass(frozen=True, slots=True)
class RunRecordTable(Tabular):
    """Runs as a table: one row per run, a column per `RunRecord` field (`RUN_COLUMN_TYPES`)."""

    runs: tuple[RunRecord, ...]

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self.runs)

    def table_columns(self) -> dict[str, list[Any]]:
        return _field_columns(self.runs, RUN_COLUMN_TYPES)

    def column_types(self) -> Mapping[str, ColumnType]:
        return RUN_COLUMN_TYPES


def runs_table(runs: Iterable[RunRecord]) -> RunRecordTable:
    """`runs` (from `list_runs`, `get_run`) as a table of one row per run."""
    return RunRecordTable(tuple(runs))


@dataclass(frozen=True, slots=True)
class SampleRecordTable(Tabular):
    """Samples as a table: one row per sample, the run it belongs to, then a column per
    `SampleRecord` field (`SAMPLE_COLUMN_TYPES`)."""

    run_id: str
    samples: tuple[SampleRecord, ...]

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[SampleRecord]:
        return iter(self.samples)

    def table_columns(self) -> dict[str, list[Any]]:
        fields = [field.name for field in dataclasses.fields(SampleRecord)]
        return {"run_id": [self.run_id] * len(self.samples), **_field_columns(self.samples, fields)}

    def column_types(self) -> Mapping[str, ColumnType]:
        return SAMPLE_COLUMN_TYPES


def samples_table(run_id: str, samples: Iterable[SampleRecord]) -> SampleRecordTable:
    """A run's `samples` (from `list_samples`) as a table of one row per sample."""
    return SampleRecordTable(run_id, tuple(samples))
