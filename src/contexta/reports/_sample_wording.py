"""How a metric recorded inside samples reads in reports: as its statistics (`SampleAggregate`),
never as the value of whichever sample ran last. Shared by every report that summarises runs, so a
per-sample metric reads the same in all of them (and in `contexta run show`, which lays out the
snapshot report)."""

from __future__ import annotations

from collections.abc import Sequence

from contexta.query import SampleAggregate
from contexta.reports._cells import Cell
from contexta.reports._wording import number_text

__all__ = ["SAMPLE_STATISTICS", "aggregate_text", "non_finite_note", "statistic_cells"]

# The statistics a comparison table lists per per-sample metric, one row each (`share` only for 0/1
# metrics, `non_finite` only when some sample held NaN or an infinity).
SAMPLE_STATISTICS = ("samples", "mean", "p50", "p95", "min", "max", "share", "non_finite")


def _value(aggregate: SampleAggregate | None, statistic: str) -> Cell:
    if aggregate is None:
        return None
    if statistic == "samples":
        return aggregate.count
    if statistic == "non_finite":
        return aggregate.non_finite_count
    value: Cell = getattr(aggregate, statistic)
    return value


def statistic_cells(aggregates: Sequence[SampleAggregate | None]) -> list[tuple[str, list[Cell]]]:
    """(statistic, its value per aggregate) for the statistics worth a row: for a 0/1 metric in every
    run the sample count and the share only, else the count, mean, percentiles and extremes (and the
    share where some run has one); `non_finite` only when some sample was NaN or infinite."""
    present = [aggregate for aggregate in aggregates if aggregate is not None]
    binary = all(aggregate.share is not None for aggregate in present)
    some_share = any(aggregate.share is not None for aggregate in present)
    shown = [
        statistic
        for statistic in SAMPLE_STATISTICS
        if (statistic in ("samples", "share", "non_finite") or not binary)
        and (statistic != "share" or some_share)
        and (statistic != "non_finite" or any(aggregate.non_finite_count for aggregate in present))
    ]
    return [(statistic, [_value(aggregate, statistic) for aggregate in aggregates]) for statistic in shown]


def non_finite_note(aggregate: SampleAggregate) -> str:
    """`; 3 NaN/inf values left out` when some sample held one, else the empty string."""
    count = aggregate.non_finite_count
    if not count:
        return ""
    return f"; {count} NaN/inf value{'' if count == 1 else 's'} left out"


def aggregate_text(aggregate: SampleAggregate) -> str:
    """`key over 200 samples: mean 97.4, p50 95, p95 180, min 12, max 240` (a 0/1 metric: `share
    0.87 (174 of 200)`), with the non-finite values counted when there are any."""
    head = f"{aggregate.metric_key} over {aggregate.count} sample{'' if aggregate.count == 1 else 's'}"
    if aggregate.count == 0:
        return f"{head}{non_finite_note(aggregate)}"
    if aggregate.share is not None:
        ones = round(aggregate.share * aggregate.count)
        body = f"share {number_text(aggregate.share)} ({ones} of {aggregate.count})"
    else:
        body = ", ".join(
            f"{name} {number_text(value)}"
            for name in ("mean", "p50", "p95", "min", "max")
            if (value := getattr(aggregate, name)) is not None
        )
    return f"{head}: {body}{non_finite_note(aggregate)}"
