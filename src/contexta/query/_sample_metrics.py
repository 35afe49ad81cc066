"""Reading per-sample metrics from the store: one value per (sample, key), the last the sample
recorded, taken from the stored series' summaries (no point is read), and their aggregates per
(stage, key)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any, NamedTuple

from contexta.contract import decode_metric_value
from contexta.query._sample_stats import SampleAggregate, summarise

__all__ = ["SampleValue", "sample_aggregates", "sample_values"]


class SampleValue(NamedTuple):
    """The value one sample recorded last for one key."""

    stage_ref: str
    sample_ref: str
    key: str
    value: float | int


def sample_values(
    connection: sqlite3.Connection,
    execution_id: str,
    *,
    stage_ref: str | None = None,
    key: str | None = None,
) -> list[SampleValue]:
    """Each (sample, key) of the execution (optionally of one stage, one key) once, with the value it
    recorded last, in the order the pairs were first captured."""
    sql = (
        "SELECT stage_ref, sample_ref, key, last_seq, last_value FROM metric_series "
        "WHERE execution_id = ? AND sample_ref != ''"
    )
    parameters: list[Any] = [execution_id]
    if stage_ref is not None:
        sql += " AND stage_ref = ?"
        parameters.append(stage_ref)
    if key is not None:
        sql += " AND key = ?"
        parameters.append(key)
    found: dict[tuple[str, str], tuple[str, int, Any]] = {}
    for stage, sample, series_key, last_seq, last_value in connection.execute(
        sql + " ORDER BY first_seq", parameters
    ):
        known = found.get((sample, series_key))
        if known is None or last_seq > known[1]:  # a sample with several series of a key: its last point
            found[(sample, series_key)] = (stage, last_seq, last_value)
    return [
        SampleValue(stage, sample, series_key, decode_metric_value(value))
        for (sample, series_key), (stage, _, value) in found.items()
    ]


def sample_aggregates(
    connection: sqlite3.Connection,
    execution_id: str,
    stage_names: Mapping[str, str],
    *,
    stage_ref: str | None = None,
    key: str | None = None,
) -> list[SampleAggregate]:
    """Each (stage, key) of the execution's per-sample metrics summarised, in the order first
    captured; `stage_names` maps stage refs to names (a stage it lacks is named by its ref's last
    component)."""
    grouped: dict[tuple[str, str], list[float | int]] = {}
    for value in sample_values(connection, execution_id, stage_ref=stage_ref, key=key):
        grouped.setdefault((value.stage_ref, value.key), []).append(value.value)
    return [
        summarise(
            values,
            stage_id=stage,
            stage_name=stage_names.get(stage, stage.rpartition(".")[2]),
            metric_key=series_key,
        )
        for (stage, series_key), values in grouped.items()
    ]
