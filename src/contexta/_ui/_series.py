"""A metric series as a chart draws it: about one point per pixel of the chart, whatever its length.

`series_view` is the one place the dashboard asks for a chart's points. Until
`contexta.query.get_series_view` (the downsampler: min/max per bucket, NaN gaps and the last point
kept) lands, a naive stand-in with the same signature and result shape answers here; swapping it is
one line in `series_view`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from contexta.errors import ValidationError
from contexta.query._live import get_series_tail
from contexta.store import StoreDatabase

__all__ = ["X_AXES", "SeriesViewLike", "series_view"]

X_AXES = ("step", "time")


class SeriesViewLike(Protocol):
    """The fields of `contexta.query.SeriesView` the dashboard reads."""

    @property
    def run_id(self) -> str: ...
    @property
    def stage(self) -> str | None: ...
    @property
    def metric_key(self) -> str: ...
    @property
    def x(self) -> str: ...
    @property
    def total_points(self) -> int: ...
    @property
    def downsampled(self) -> bool: ...
    @property
    def xs(self) -> Sequence[float]: ...
    @property
    def ys(self) -> Sequence[float]: ...
    @property
    def last_seq(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _NaiveSeriesView:
    run_id: str
    stage: str | None
    metric_key: str
    x: str
    total_points: int
    downsampled: bool
    xs: list[float]
    ys: list[float]
    last_seq: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def series_view(
    db: StoreDatabase,
    run_id: str,
    key: str,
    *,
    stage: str | None = None,
    x: str = "step",
    width: int = 1500,
    x_range: tuple[float, float] | None = None,
    project: str | None = None,
) -> SeriesViewLike:
    """The chart's points of `key` in run `run_id`: `x` is "step" (a point without one takes its
    position) or "time" (seconds since the epoch); within `x_range` when given; at most about
    2 x `width` points, each bucket of the x range keeping its lowest and highest value."""
    # CONTRACT: becomes `return query.get_series_view(db, run_id, key, stage=stage, x=x, width=width,
    # x_range=x_range, project=project)` once the downsampler is in the base.
    if x not in X_AXES:
        raise ValidationError(f"x must be step or time, got {x!r}", code="series_axis_invalid")
    tail = get_series_tail(db, run_id, key, stage=stage, project=project)
    xs = (
        [float(index if step is None else step) for index, step in enumerate(tail.steps)]
        if x == "step"
        else list(tail.times)
    )
    ys = [float(value) for value in tail.values]
    if x_range is not None:
        low, high = x_range
        kept = [index for index, at in enumerate(xs) if low <= at <= high]
        xs, ys = [xs[index] for index in kept], [ys[index] for index in kept]
    total = len(xs)
    downsampled = total > 2 * width
    if downsampled:
        xs, ys = _min_max_buckets(xs, ys, width)
    return _NaiveSeriesView(tail.run_id, stage, key, x, total, downsampled, xs, ys, tail.last_seq)


def _min_max_buckets(xs: list[float], ys: list[float], width: int) -> tuple[list[float], list[float]]:
    """Each of `width` runs of consecutive points keeps its lowest and highest value (in x order) and
    a NaN where it had one (a gap); the last point is always kept."""
    size = math.ceil(len(xs) / width)
    out_x: list[float] = []
    out_y: list[float] = []
    for start in range(0, len(xs), size):
        chunk = range(start, min(start + size, len(xs)))
        finite = [index for index in chunk if math.isfinite(ys[index])]
        chosen = set()
        if finite:
            chosen = {min(finite, key=ys.__getitem__), max(finite, key=ys.__getitem__)}
        gap = next((index for index in chunk if math.isnan(ys[index])), None)
        if gap is not None:
            chosen.add(gap)
        for index in sorted(chosen):
            out_x.append(xs[index])
            out_y.append(ys[index])
    if xs and (not out_x or out_x[-1] != xs[-1]):
        out_x.append(xs[-1])
        out_y.append(ys[-1])
    return out_x, out_y
