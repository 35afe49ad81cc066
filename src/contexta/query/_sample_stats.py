"""Per-sample metrics counted as samples: count, mean, min, max, p50, p95 and, for 0/1 metrics, the
share of ones.

A metric recorded inside sample scopes (one value per evaluation case, request or image) is a
distribution, not a series: its "latest value" is whichever case happened to run last. Comparisons,
selection, reports and the command line summarise such a metric with a `SampleAggregate` instead,
built here from one value per sample. NaN and infinite values are counted apart and kept out of the
statistics, so one diverged case neither hides the others (a NaN mean) nor wins a `max`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from contexta.contract._non_finite import is_finite_number
from contexta.errors import ValidationError
from contexta.query._aggregations import finite_mean, percentile
from contexta.query._models import ReadModel

__all__ = ["SAMPLE_AGGREGATES", "SampleAggregate", "SampleAggregateName", "check_aggregate", "summarise"]

SampleAggregateName = Literal["count", "mean", "min", "max", "p50", "p95", "share"]
SAMPLE_AGGREGATES: tuple[SampleAggregateName, ...] = ("count", "mean", "min", "max", "p50", "p95", "share")


def check_aggregate(aggregate: object) -> SampleAggregateName:
    """`aggregate` when it names a statistic of `SampleAggregate`; `ValidationError` otherwise."""
    if aggregate not in SAMPLE_AGGREGATES:
        raise ValidationError(
            f"aggregate must be one of {', '.join(SAMPLE_AGGREGATES)}, got {aggregate!r}",
            code="aggregate_invalid",
        )
    return aggregate


@dataclass(frozen=True, slots=True)
class SampleAggregate(ReadModel):
    """One metric over the samples of one stage: one value per sample (the last it recorded).

    `count` and the statistics cover the finite values only; `non_finite_count` samples held NaN or
    an infinity and are left out (say so wherever the statistics are shown). `share` is the fraction
    of samples whose value is 1, for metrics whose every finite value is 0 or 1 (`correct`, `passed`);
    None for any other metric. The statistics are None when no sample has a finite value.
    """

    stage_id: str
    stage_name: str
    metric_key: str
    count: int
    mean: float | None
    min: float | int | None
    max: float | int | None
    p50: float | None
    p95: float | None
    share: float | None
    non_finite_count: int = 0

    @property
    def sample_count(self) -> int:
        """Every sample that recorded the metric, non-finite ones included."""
        return self.count + self.non_finite_count

    def value(self, aggregate: SampleAggregateName) -> float | int | None:
        """The statistic named `aggregate` (one of `SAMPLE_AGGREGATES`)."""
        name = check_aggregate(aggregate)
        result: float | int | None = getattr(self, name)
        return result


def summarise(
    values: Iterable[float | int], *, stage_id: str, stage_name: str, metric_key: str
) -> SampleAggregate:
    """The aggregate of one value per sample."""
    finite: list[float | int] = []
    non_finite = 0
    for value in values:
        if is_finite_number(value):
            finite.append(value)
        else:
            non_finite += 1
    if not finite:
        return SampleAggregate(
            stage_id, stage_name, metric_key, 0, None, None, None, None, None, None, non_finite
        )
    ordered = sorted(finite)
    ones = sum(1 for value in finite if value == 1)
    binary = ones + sum(1 for value in finite if value == 0) == len(finite)
    return SampleAggregate(
        stage_id=stage_id,
        stage_name=stage_name,
        metric_key=metric_key,
        count=len(finite),
        mean=finite_mean(finite),
        min=ordered[0],
        max=ordered[-1],
        p50=percentile(ordered, 0.5),
        p95=percentile(ordered, 0.95),
        share=ones / len(finite) if binary else None,
        non_finite_count=non_finite,
    )
