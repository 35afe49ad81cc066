"""How per-sample statistics (`SampleAggregate`) read in terminal tables: shared by `run show`,
`compare`, `metrics` and `samples`, so a metric recorded inside samples reads the same everywhere."""

from __future__ import annotations

from contexta.cli import _cells as cells
from contexta.query import SampleAggregate

__all__ = ["aggregate_cells", "non_finite_notes", "shown_statistics"]


def shown_statistics(*aggregates: SampleAggregate | None) -> tuple[str, ...]:
    """The statistics worth showing: the share for a 0/1 metric (in every run that has it), else the
    mean and the 50th and 95th percentiles."""
    present = [aggregate for aggregate in aggregates if aggregate is not None]
    if present and all(aggregate.share is not None for aggregate in present):
        return ("share",)
    return ("mean", "p50", "p95")


def aggregate_cells(aggregate: SampleAggregate | None, statistics: tuple[str, ...]) -> list[str]:
    """Each statistic of `aggregate` as a cell (`-` when absent)."""
    if aggregate is None:
        return [cells.NOTHING for _ in statistics]
    return [cells.number(getattr(aggregate, statistic)) for statistic in statistics]


def non_finite_notes(aggregates: list[SampleAggregate]) -> list[str]:
    """A line per aggregate that left NaN or infinite values out of its statistics."""
    return [
        f"{aggregate.stage_name}/{aggregate.metric_key}: {aggregate.non_finite_count} NaN/inf "
        f"value{'' if aggregate.non_finite_count == 1 else 's'} left out of the statistics"
        for aggregate in aggregates
        if aggregate.non_finite_count
    ]
