"""What system metrics cost the program (issue 20, item 4): the sampler thread's own CPU per sample.

Run with `python -m pytest benchmarks/test_system_metrics_overhead.py --benchmark-enable -s`. Without
that flag the body runs once on SMOKE_SAMPLES samples as a smoke test.

A run samples every INTERVAL_S seconds until the sampler has taken SAMPLES samples, while the main
thread sleeps. The sampler measures its own thread's CPU time (`time.thread_time()`) around each sample:
reading psutil (process CPU and RSS, machine CPU and memory, disk and network counters) and queueing the
values (`stage.metrics`, one call per unit). Reported in `extra_info`: mean and worst CPU per sample in
ms, and the mean as a share of one core at the default 1 s interval (mean CPU per sample / 1 s). Target:
< 1 % of one core. The writer's cost of storing ~9 more records per second is not the sampler's and is
not counted here (it is what any 9 metric calls per second cost).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture._system_metrics import SamplerStats

INTERVAL_S = 0.01
SAMPLES = 200
SMOKE_SAMPLES = 10


@pytest.mark.benchmark(group="system-metrics")
def test_system_metrics_sampler_cpu_per_sample(benchmark: Any, tmp_path: Path) -> None:
    wanted = SAMPLES if benchmark.enabled else SMOKE_SAMPLES
    results: list[tuple[SamplerStats, int]] = []

    with Contexta(workspace=tmp_path / "ws", config={"project_name": "bench"}) as ctx:

        def body() -> None:
            with ctx.run("sampled", system_metrics=INTERVAL_S) as run:
                sampler = run._system_metrics
                assert sampler is not None
                while sampler.stats().samples < wanted:
                    time.sleep(INTERVAL_S)
            stored = len(ctx.get_metric_series(run.run_id, "process.rss_bytes", stage="system").points)
            results.append((sampler.stats(), stored))

        benchmark.pedantic(body, rounds=1, iterations=1)

    ((stats, stored),) = results
    assert stats.samples >= wanted and stored == stats.samples and stats.failed_samples == 0
    mean_ms, worst_ms = stats.cpu_s_mean * 1000, stats.cpu_s_worst * 1000
    benchmark.extra_info["samples"] = stats.samples
    benchmark.extra_info["cpu_ms_per_sample_mean"] = round(mean_ms, 3)
    benchmark.extra_info["cpu_ms_per_sample_worst"] = round(worst_ms, 3)
    benchmark.extra_info["share_of_one_core_at_1s_percent"] = round(stats.cpu_s_mean / 1.0 * 100, 3)
    print(
        f"\nsystem metrics: {stats.samples} samples, sampler CPU per sample mean {mean_ms:.3f} ms, "
        f"worst {worst_ms:.3f} ms; at 1 s: {stats.cpu_s_mean * 100:.3f} % of one core"
    )
