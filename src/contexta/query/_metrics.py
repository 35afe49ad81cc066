"""A run's metrics at a glance: each key's latest value and point count, per stage or per scope, read
from the stored series' summaries (no point is read, so a million-point series costs one row).

Comparisons and reports (and so the command line) quote a run's metrics this way, so "the latest
value of a stage's metric" means one thing in all of them: the value captured last inside the stage.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Literal

from contexta.errors import ValidationError
from contexta.query._models import LatestMetric
from contexta.store import select_series

__all__ = ["METRIC_GROUPINGS", "MetricGrouping", "check_grouping", "latest_metrics"]

MetricGrouping = Literal["stage", "scope"]
METRIC_GROUPINGS: tuple[MetricGrouping, ...] = ("stage", "scope")


def check_grouping(per: object) -> MetricGrouping:
    """`per` when it names a grouping; `ValidationError(metric_grouping_invalid)` otherwise."""
    if per not in METRIC_GROUPINGS:
        raise ValidationError(
            f"per must be one of {', '.join(METRIC_GROUPINGS)}, got {per!r}", code="metric_grouping_invalid"
        )
    return per


def latest_metrics(
    connection: sqlite3.Connection,
    execution_id: str,
    stage_names: Mapping[str, str],
    per: MetricGrouping = "stage",
    *,
    include_samples: bool = True,
) -> list[LatestMetric]:
    """The execution's metrics, one per (stage, key) or per (scope, key), in the order each was first
    captured; `stage_names` maps stage refs to names (a stage it lacks is named by its ref's last
    component). Without `include_samples`, points captured inside samples are left out: comparisons
    summarise those as samples (`_sample_metrics.py`), not by whichever sample ran last."""
    found: dict[tuple[str | None, str | None, str | None, str], list[int | float]] = {}
    by_scope = per == "scope"
    for series in select_series(connection, execution_id=execution_id):  # ordered by first capture
        if not include_samples and series.sample_ref is not None:
            continue
        slot = (
            series.stage_ref,
            series.batch_ref if by_scope else None,
            series.sample_ref if by_scope else None,
            series.key,
        )
        known = found.get(slot)
        if known is None:
            found[slot] = [series.last_seq, series.last_value, series.point_count]
            continue
        known[2] += series.point_count
        if series.last_seq > known[0]:
            known[0], known[1] = series.last_seq, series.last_value
    return [
        LatestMetric(
            metric_key=key,
            value=value,
            point_count=int(count),
            stage_id=stage,
            stage_name=None if stage is None else stage_names.get(stage, stage.rpartition(".")[2]),
            batch_id=batch,
            sample_id=sample,
        )
        for (stage, batch, sample, key), (_, value, count) in found.items()
    ]
