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

__all__ = ["AGGREGATIONS", "STEP_AGGREGATIONS", "Aggregation", "aggregate", "check_aggregation"]

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
        if not exact:
            return sum(values) / len(values)
        try:
            return math.fsum(values) / len(values)
        except OverflowError:  # finite values whose sum is beyond the largest float
            return math.fsum(value / len(values) for value in values)
    return _percentile(sorted(values), _PERCENTILES[aggregation])


def _percentile(ordered: Sequence[float | int], fraction: float) -> float:
    """The `fraction` quantile of `ordered`, interpolated between the two closest ranks."""
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
