"""A metric series as a chart draws it: about one point per pixel of the chart, whatever its length.

`series_view` is the one place the dashboard asks for a chart's points: `contexta.query`'s
`get_series_view` keeps, per bucket of the x range, the lowest and highest point exactly, a NaN
where the bucket held one (a gap) and the range's first and last points, reading whole blocks of a
stored chunk by their summaries (store schema 6), so a ten-million-point series costs about what a
chart of its width does.
"""

from __future__ import annotations

from contexta import query
from contexta.query import SERIES_AXES, SeriesAxis, SeriesView
from contexta.store import StoreDatabase

__all__ = ["X_AXES", "series_view"]

X_AXES: tuple[str, ...] = tuple(SERIES_AXES)


def series_view(
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
    """The chart's points of `key` in run `run_id` on the axis `x` ("step" or "time", seconds since
    the epoch), within `x_range` when given: at most about 2 x `width` points (see
    `query.get_series_view`)."""
    return query.get_series_view(
        db, run_id, key, stage=stage, x=x, width=width, x_range=x_range, project=project
    )
