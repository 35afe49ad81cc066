"""How a run's points of one metric become the one number a trend plots or an alert rule compares.

`aggregate` is the only statistics code of trends and alerts, so "p95 of a run's loss" means one
thing wherever it is quoted. NaN is contagious on purpose: a run whose series diverged shows as `nan`
(a gap in a chart, a fired alert) instead of hiding behind its finite points; infinities take part as
the numbers they are (`max` of a series that blew up is `inf`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from contexta.errors import ValidationError

__all__ = [
    "AGGREGATIONS",
    "STEP_AGGREGATIONS",
    "Aggregation",
    "aggregate",
    "check_aggregation",
    "finite_mean",
    "percentile",
]

Aggregation = Literal["latest", "min", "max", "mean", "p50", "p95", "count"]
AGGREGATIONS: tuple[Aggregation, ...] = ("latest", "min", "max", "mean", "p50", "p95", "count")
# Aggregations whose value is one of the points, so the point's step can be quoted with it.
STEP_AGGREGATIONS: frozenset[str] = frozenset(("latest", "min", "max"))

_PERCENTILES = {"p50": 0.50, "p95": 0.95}


def check_aggregation(aggregation: object) -> Aggregation:
    """`aggregation` when it names one; `ValidationError(aggregation_invalid)` otherwise."""
    for known in AGGREGATIONS:
        if aggregation == known and isinstance(aggregation, str):
            return known
    raise ValidationError(
        f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}",
        code="aggregation_invalid",
        details={"aggregation": aggregation},
    )


def aggregate(values: Sequence[float | int], aggregation: Aggregation) -> float | int:
    """The `aggregation` of `values` (non-empty, in capture order).

    `latest` is the last value, `count` how many there are; `min`, `max` keep ints as ints; `mean`,
    `p50` and `p95` are floats, the percentiles interpolated linearly between the closest ranks (the
    common default, numpy's `linear`). Any NaN makes every aggregation but `latest` and `count` NaN.
    """
    if aggregation == "count":
        return len(values)
    if aggregation == "latest":
        return values[-1]
    if any(math.isnan(value) for value in values):
        return math.nan
    if aggregation == "min":
        return min(values)
    if aggregation == "max":
        return max(values)
    if aggregation == "mean":
        exact = all(value - value == 0 for value in values)  # fsum refuses inf + -inf
        return finite_mean(values) if exact else sum(values) / len(values)
    return percentile(sorted(values), _PERCENTILES[aggregation])


def finite_mean(finite: Sequence[float | int]) -> float:
    """The mean of finite values (non-empty), exact (fsum) and finite even when their sum is beyond
    the largest float. Also the mean of per-sample statistics (`_sample_stats.py`)."""
    try:
        return math.fsum(finite) / len(finite)
    except OverflowError:
        return math.fsum(value / len(finite) for value in finite)


def percentile(ordered: Sequence[float | int], fraction: float) -> float:
    """The `fraction` quantile of `ordered` (sorted, non-empty), interpolated linearly between the
    two closest ranks (numpy's default), so p50 of an even count is the midpoint of the middle two;
    finite for finite values even when the ranks are further apart than the largest float."""
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    low, high = float(ordered[below]), float(ordered[above])
    if position == below or low == high:
        return low
    weight = position - below
    spread = high - low
    if math.isinf(spread) and math.isfinite(low) and math.isfinite(high):  # ranks beyond the float range
        return low * (1 - weight) + high * weight
    return low + spread * weight
