"""One metric of a run as a chart draws it: at most ~2 points per pixel, however long the series.

`get_series_view(db, run_id, "loss", width=1500)` answers the dashboard's chart and its zooms:
when the range holds more than `2 * width` points, it is cut into `width` x-buckets and each keeps
its smallest and largest point, exactly as stored, and its first NaN (so the chart shows a gap);
the range's first and last points are always kept. A 10,000,000-point series costs about what a
1,000-point one does, because stored chunks carry per-block extremes (`store/_chunk_summary.py`)
and only bucket edges are walked (`_downsample.py`).

What is charted: the key's points in the stage (its batches included; every stage of the run when
`stage` is None, as `get_metric_series` reads), merged in x order. Points captured on samples are
left out: a per-sample metric is one value per case, which the samples table lists, not a curve;
a key recorded on samples only is a `NotFoundError` saying so. On `x="step"`, points captured
without a step have no place and are left out (`x="time"` shows them). `x="time"` is the
observation time in seconds since the epoch, at the microsecond precision `observed_at` has.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from contexta.contract._non_finite import encode_metric_value
from contexta.errors import NotFoundError, ValidationError
from contexta.query._downsample import downsample, x_extent
from contexta.query._fetch import fetch_stage_names
from contexta.query._metric_names import missing_metric_error, recorded_keys
from contexta.query._models import ReadModel
from contexta.query._reading import reading
from contexta.query._resolve import find_run, find_stage_ref
from contexta.store import StoreDatabase, select_series, stored_chunks

__all__ = ["SERIES_AXES", "SeriesAxis", "SeriesView", "get_series_view"]

SeriesAxis = Literal["step", "time"]
SERIES_AXES: tuple[SeriesAxis, ...] = ("step", "time")
_WIDEST = 100_000  # buckets: a chart wider than this is a request to read the series whole


@dataclass(frozen=True, slots=True)
class SeriesView(ReadModel):
    """A metric's points ready to chart (see the module docstring).

    `xs` are steps, or seconds since the epoch for `x="time"`; `ys` the values as floats, NaN and the
    infinities kept. `total_points` counts the points in the range asked (on the axis), `downsampled`
    says whether `xs`/`ys` are a min/max selection of them. `last_seq` is the capture position of the
    series' newest point (whatever the range): a live view asks again when it has grown.
    """

    run_id: str
    stage: str | None  # the stage's name as typed; None: every stage of the run
    metric_key: str
    x: SeriesAxis
    total_points: int
    downsampled: bool
    xs: array[float]
    ys: array[float]
    last_seq: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: steps as integers, times as seconds; a NaN value is null (a gap in the line,
        as chart libraries draw null), an infinite one the capture log's token "Infinity" or
        "-Infinity" (a number no chart can place, but not a gap)."""
        xs: list[float | int] = [int(x) for x in self.xs] if self.x == "step" else list(self.xs)
        return {
            "run_id": self.run_id,
            "stage": self.stage,
            "metric_key": self.metric_key,
            "x": self.x,
            "total_points": self.total_points,
            "downsampled": self.downsampled,
            "xs": xs,
            "ys": [y if y - y == 0 else None if y != y else encode_metric_value(y) for y in self.ys],  # noqa: PLR0124
            "last_seq": self.last_seq,
        }


def _checked(
    key: object, x: object, width: object, x_range: object
) -> tuple[str, SeriesAxis, int, tuple[float, float] | None]:
    if not isinstance(key, str) or not key:
        raise ValidationError(
            f"metric key must be a non-empty string, got {key!r}", code="metric_key_invalid"
        )
    if x not in SERIES_AXES:
        raise ValidationError(f"x must be 'step' or 'time', got {x!r}", code="series_axis_invalid")
    if type(width) is not int or not 1 <= width <= _WIDEST:
        raise ValidationError(
            f"width must be a whole number of buckets from 1 to {_WIDEST}, got {width!r}",
            code="series_width_invalid",
        )
    if x_range is None:
        return key, x, width, None
    bounds = list(x_range) if isinstance(x_range, Sequence) and not isinstance(x_range, str) else None
    if (
        bounds is None
        or len(bounds) != 2
        or not all(type(bound) in (int, float) and math.isfinite(bound) for bound in bounds)
        or bounds[0] > bounds[1]
    ):
        raise ValidationError(
            f"x_range must be (x0, x1), two finite numbers with x0 <= x1, got {x_range!r}",
            code="series_range_invalid",
        )
    return key, x, width, (bounds[0], bounds[1])


def _integer_range(x_range: tuple[float, float], time: bool) -> tuple[int, int]:
    """The inclusive range in the axis' integers: the steps within it, or the nearest microseconds
    (a chart's zoom is seconds as doubles, whose last digit is off by a fraction of a microsecond)."""
    if time:
        low, high = (round(Fraction(bound) * 1_000_000) for bound in x_range)
        return low, high
    return math.ceil(x_range[0]), math.floor(x_range[1])


def get_series_view(
    db: StoreDatabase,
    run_id: str,
    key: str,
    *,
    stage: str | None = None,
    x: SeriesAxis = "step",
    width: int = 1500,
    x_range: tuple[float, float] | None = None,
    project: str | None = None,
) -> SeriesView:
    """`key`'s points in the run (one stage, or all) for a chart `width` buckets wide, optionally
    within `x_range=(x0, x1)` (inclusive; steps, or seconds to the microsecond for `x="time"`). See
    the module docstring.
    `NotFoundError(metric_not_found)` for a key not recorded there (naming the closest),
    `ValidationError` (`series_axis_invalid`, `series_width_invalid`, `series_range_invalid`,
    `metric_key_invalid`) for a bad argument."""
    key, axis, width, bounds = _checked(key, x, width, x_range)
    time = axis == "time"
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        stage_ref = None if stage is None else find_stage_ref(connection, run, stage)
        names = fetch_stage_names(connection, run.execution_id)
        series = select_series(connection, execution_id=run.execution_id, key=key, stage_ref=stage_ref)
        charted = [row for row in series if row.sample_ref is None]
        if not charted:
            where = f"run {run.run_id!r}"
            if stage_ref is not None:
                where = f"stage {names.get(stage_ref, stage)!r} of {where}"
            if series:
                raise NotFoundError(
                    f"metric {key!r} was recorded in {where} on samples only: a per-sample metric is "
                    "listed by the samples table, not charted",
                    code="metric_not_found",
                    details={"metric_key": key, "closest": [], "samples_only": True},
                )
            raise missing_metric_error(key, where, recorded_keys(connection, [run.execution_id]), names)
        chunks = list(stored_chunks(connection, charted))
        if bounds is not None:
            lo, hi = _integer_range(bounds, time)
        else:
            extent = x_extent(chunks, time)
            lo, hi = extent if extent is not None else (0, -1)
        result = downsample(chunks, time, lo, hi, width) if lo <= hi else None
    scale = 1e6 if time else 1.0
    return SeriesView(
        run_id=run.run_id,
        stage=None if stage_ref is None else names.get(stage_ref, stage_ref.rpartition(".")[2]),
        metric_key=key,
        x=axis,
        total_points=0 if result is None else result.total,
        downsampled=False if result is None else result.downsampled,
        xs=array("d", [] if result is None else [value / scale for value in result.xs]),
        ys=array("d", [] if result is None else result.ys),
        last_seq=max(row.last_seq for row in charted),
    )
