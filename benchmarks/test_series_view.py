"""A metric series downsampled for a chart (issue 18): `get_series_view` of a 10,000,000-point series
at width 1,500. Target: under 300 ms for the full range and for a zoom, with memory bounded.

Run with `python -m pytest benchmarks/test_series_view.py --benchmark-enable`. Without that flag (the
project default is `--benchmark-disable`) each view is taken once of a 20,000-point series as a
smoke test.

The series is captured live in one `stage.metric` loop (about 20-30 s for 10,000,000 points; a queue
larger than a stored batch, so capture never waits for the writer): a noisy, drifting loss with a NaN
every million steps. Each view is timed over ROUNDS rounds after one warm-up, in a later investigation
(a new `Contexta` on the workspace); `extra_info` has the mean and the worst round in ms, how many
points the view returned, and how much the process' resident memory grew over the rounds (now and
at its peak).
"""

from __future__ import annotations

import math
import resource
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from sweeps import benchmarks_enabled

PROJECT = "bench"
POINTS = 10_000_000
SMOKE_POINTS = 20_000
WIDTH = 1_500
ROUNDS = 10

# (id, x, fraction of the step range as the zoom window, or None for all of it)
VIEWS = [
    ("full", "step", None),
    ("zoom-1pct", "step", (0.50, 0.51)),
    ("zoom-30pct", "step", (0.20, 0.50)),
    ("full-by-time", "time", None),
]


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


@pytest.fixture(scope="module")
def long_series(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A workspace with one run whose `train` stage has a `loss` series of POINTS points."""
    points = POINTS if benchmarks_enabled(request.config) else SMOKE_POINTS
    workspace = tmp_path_factory.mktemp("series-view") / ".contexta"
    ctx = Contexta(
        workspace=workspace, config={"project_name": PROJECT, "capture": {"queue_capacity": 1 << 21}}
    )
    with ctx.run("long") as run, run.stage("train") as stage:
        metric = stage.metric
        for step in range(points):
            value = (
                math.nan if step % 1_000_000 == 999_999 else 2.0 / (1 + step / 1e5) + math.sin(step) * 0.01
            )
            metric("loss", value, step=step)
    ctx.close()
    return workspace, points


@pytest.mark.benchmark(group="series-view")
@pytest.mark.parametrize(("view", "axis", "window"), VIEWS, ids=[view[0] for view in VIEWS])
def test_a_long_series_downsampled_for_a_chart(
    benchmark: Any,
    long_series: tuple[Path, int],
    view: str,
    axis: str,
    window: tuple[float, float] | None,
) -> None:
    workspace, points = long_series
    ctx = Contexta(workspace=workspace, config={"project_name": PROJECT})
    x_range = None if window is None else (window[0] * points, window[1] * points)
    rounds = ROUNDS if benchmark.enabled else 1
    peak_before, rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, _rss_mb()
    try:
        shown = benchmark.pedantic(
            ctx.get_series_view,
            args=(f"run:{PROJECT}.long", "loss"),
            kwargs={"stage": "train", "x": axis, "width": WIDTH, "x_range": x_range},
            rounds=rounds,
            iterations=1,
            warmup_rounds=1 if benchmark.enabled else 0,
        )
    finally:
        ctx.close()
    expected = points if window is None else int(window[1] * points) - math.ceil(window[0] * points) + 1
    assert shown.total_points == expected
    assert shown.downsampled == (expected > 2 * WIDTH)
    assert len(shown.xs) <= 3 * WIDTH + 2
    benchmark.extra_info.update(
        points=points,
        width=WIDTH,
        returned=len(shown.xs),
        rss_growth_mb=round(_rss_mb() - rss_before, 1),
        peak_rss_growth_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak_before, 1),
    )
    if benchmark.stats is not None:
        stats = benchmark.stats.stats
        benchmark.extra_info["mean_ms"] = round(stats.mean * 1000, 1)
        benchmark.extra_info["worst_ms"] = round(stats.max * 1000, 1)
