"""What one capture call costs the caller, next to the floor and to the synchronous path it replaces.

Run with `python -m pytest benchmarks/ --benchmark-enable`. Without that flag (the project default is
`--benchmark-disable`) each body runs once as a smoke test.

Every "metric-call" benchmark times one round of CALLS calls, so the rows of that table compare per
call directly; `extra_info["per_call_ns"]` holds the mean divided by CALLS. The floor is a tuple of the
same shape appended to a `collections.deque`; the seed-style path opens the log, `json.dumps` one line,
writes and closes it on every call, as the system the seed documents describe did (SPEC §11).
Between rounds the queue is flushed (untimed), so every round starts from an empty queue while the
writer thread still competes for the GIL during the round, as it does in a training loop.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture import LocalJsonlSink, RunScope, StageScope, log_segments, open_segment

CALLS = 10_000
ROUNDS = 20
THROUGHPUT_CALLS = 1_000_000
SMOKE_THROUGHPUT_CALLS = 20_000  # when benchmarks are disabled the body is only a smoke test
MEMORY_CALLS = 5_000_000
SMOKE_MEMORY_CALLS = 200_000
QUEUE_CAPACITY = 1 << 20  # larger than anything queued below, so no call ever blocks or drops

Capture = tuple[Contexta, RunScope, StageScope]


@pytest.fixture
def capture(tmp_path: Path) -> Iterator[Capture]:
    ctx = Contexta(
        workspace=tmp_path / ".contexta",
        config={"project_name": "bench", "capture": {"queue_capacity": QUEUE_CAPACITY}},
    )
    run = ctx.run("hot-path")
    stage = run.stage("train")
    yield ctx, run, stage
    run.close()
    ctx.close()
    stats = ctx.capture_stats()
    assert (stats.dropped, stats.failed, stats.lost, stats.pending) == (0, 0, 0, 0)


def run_rounds(
    benchmark: Any,
    body: Callable[[], object],
    *,
    calls: int,
    rounds: int = ROUNDS,
    between: Callable[[], object] | None = None,
) -> None:
    """Time `rounds` rounds of `body` (which makes `calls` calls) and note the per-call cost."""

    def setup() -> None:  # pedantic treats a truthy return value as arguments
        if between is not None:
            between()

    benchmark.extra_info["calls_per_round"] = calls
    benchmark.pedantic(body, setup=setup, rounds=rounds, warmup_rounds=1)
    if benchmark.stats is not None:
        stats = benchmark.stats.stats
        benchmark.extra_info["per_call_ns"] = round(stats.mean / calls * 1e9, 1)
        benchmark.extra_info["per_call_min_ns"] = round(stats.min / calls * 1e9, 1)


@pytest.mark.benchmark(group="metric-call")
def test_stage_metric_call(benchmark: Any, capture: Capture) -> None:
    ctx, _, stage = capture

    def body() -> None:
        metric = stage.metric
        for step in range(CALLS):
            metric("loss", 0.5, step=step)

    run_rounds(benchmark, body, calls=CALLS, between=ctx.flush)


@pytest.mark.benchmark(group="metric-call")
def test_ctx_metric_call_on_the_current_stage(benchmark: Any, capture: Capture) -> None:
    ctx, run, _ = capture

    def body() -> None:
        with run.stage("facade"):  # ctx.metric finds this stage through the current-scope context variable
            metric = ctx.metric
            for step in range(CALLS):
                metric("loss", 0.5, step=step)

    run_rounds(benchmark, body, calls=CALLS, between=ctx.flush)


@pytest.mark.benchmark(group="metric-call")
def test_stage_metrics_call_with_four_keys(benchmark: Any, capture: Capture) -> None:
    ctx, _, stage = capture

    def body() -> None:
        metrics = stage.metrics
        for step in range(CALLS):
            metrics({"loss": 0.5, "accuracy": 0.91, "learning_rate": 0.001, "grad_norm": 1.7}, step=step)

    run_rounds(benchmark, body, calls=CALLS, between=ctx.flush)
    if benchmark.stats is not None:
        benchmark.extra_info["per_key_ns"] = round(benchmark.stats.stats.mean / (CALLS * 4) * 1e9, 1)


TEN_KEYS = tuple(f"key.{index}" for index in range(10))
STEPS_OF_TEN = CALLS // 10  # a round of either ten-key form records CALLS metrics


@pytest.mark.benchmark(group="metric-call")
def test_stage_metrics_call_with_ten_keys(benchmark: Any, capture: Capture) -> None:
    """One `metrics()` call per step with ten keys; `per_key_ns` is the figure to set beside
    `test_ten_compiled_metric_calls_per_step`'s (issue 16: no more per key than one `metric` call)."""
    ctx, _, stage = capture
    k0, k1, k2, k3, k4, k5, k6, k7, k8, k9 = TEN_KEYS

    def body() -> None:
        metrics = stage.metrics
        for step in range(STEPS_OF_TEN):
            metrics(
                {
                    k0: 0.5,
                    k1: 0.91,
                    k2: 0.001,
                    k3: 1.7,
                    k4: 0.2,
                    k5: 3.5,
                    k6: 0.03,
                    k7: 12.0,
                    k8: 0.6,
                    k9: 7.25,
                },
                step=step,
            )

    run_rounds(benchmark, body, calls=CALLS, between=ctx.flush)
    if benchmark.stats is not None:
        benchmark.extra_info["per_key_ns"] = benchmark.extra_info["per_call_ns"]
        benchmark.extra_info["per_key_min_ns"] = benchmark.extra_info["per_call_min_ns"]


@pytest.mark.benchmark(group="metric-call")
def test_ten_compiled_metric_calls_per_step(benchmark: Any, capture: Capture) -> None:
    """The comparison point of `test_stage_metrics_call_with_ten_keys`: the same ten keys and values,
    one `metric` call each (the compiled call where the extension was built)."""
    ctx, _, stage = capture
    k0, k1, k2, k3, k4, k5, k6, k7, k8, k9 = TEN_KEYS

    def body() -> None:
        metric = stage.metric
        for step in range(STEPS_OF_TEN):
            metric(k0, 0.5, step=step)
            metric(k1, 0.91, step=step)
            metric(k2, 0.001, step=step)
            metric(k3, 1.7, step=step)
            metric(k4, 0.2, step=step)
            metric(k5, 3.5, step=step)
            metric(k6, 0.03, step=step)
            metric(k7, 12.0, step=step)
            metric(k8, 0.6, step=step)
            metric(k9, 7.25, step=step)

    run_rounds(benchmark, body, calls=CALLS, between=ctx.flush)
    if benchmark.stats is not None:
        benchmark.extra_info["per_key_ns"] = benchmark.extra_info["per_call_ns"]
        benchmark.extra_info["per_key_min_ns"] = benchmark.extra_info["per_call_min_ns"]


@pytest.mark.benchmark(group="metric-call")
def test_floor_deque_append_of_a_similar_tuple(benchmark: Any) -> None:
    queue: collections.deque[tuple[Any, ...]] = collections.deque()
    scope = object()  # stands in for the shared scope context every queued item points to
    time_ns = time.time_ns

    def body() -> None:
        append = queue.append
        for step in range(CALLS):
            append((1, time_ns(), scope, "loss", 0.5, None, step, "step", None))

    run_rounds(benchmark, body, calls=CALLS, between=queue.clear)
    assert len(queue) == CALLS


@pytest.mark.benchmark(group="metric-call")
def test_seed_style_synchronous_write_per_call(benchmark: Any, tmp_path: Path) -> None:
    log = tmp_path / "record.jsonl"
    counter = iter(range(1 << 62))

    def one_call(key: str, value: float, step: int) -> None:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        line = {
            "captured_at": now,
            "family": "RECORD",
            "payload_type": "MetricRecord",
            "payload_ref": f"record:bench.hot-path.{next(counter)}",
            "sink_name": "local-jsonl",
            "payload": {
                "envelope": {
                    "record_ref": f"record:bench.hot-path.{step}",
                    "record_type": "metric",
                    "recorded_at": now,
                    "observed_at": now,
                    "producer_ref": "contexta.capture",
                    "run_ref": "run:bench.hot-path",
                    "stage_execution_ref": "stage:bench.hot-path.train",
                    "completeness_marker": "complete",
                    "degradation_marker": "none",
                    "schema_version": "1.0",
                },
                "payload": {
                    "metric_key": key,
                    "value": value,
                    "value_type": "float64",
                    "step": step,
                    "aggregation_scope": "step",
                    "subject_ref": "stage:bench.hot-path.train",
                },
            },
        }
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    def body() -> None:
        for step in range(CALLS):
            one_call("loss", 0.5, step)

    run_rounds(benchmark, body, calls=CALLS, rounds=5, between=lambda: log.write_bytes(b""))
    assert sum(1 for _ in log.open("rb")) == CALLS


@pytest.mark.benchmark(group="metric-throughput")
def test_throughput_into_the_capture_log(benchmark: Any, tmp_path: Path) -> None:
    """1,000,000 `stage.metric` calls with only the capture log (persist off), timed until `flush()`
    returns: every record is then written to record.jsonl. The store's figure is in
    test_store_throughput.py."""
    calls = THROUGHPUT_CALLS if benchmark.enabled else SMOKE_THROUGHPUT_CALLS
    rounds = 3 if benchmark.enabled else 1
    workspaces = iter(range(rounds + 1))

    def setup() -> tuple[tuple[Contexta, StageScope], dict[str, Any]]:
        ctx = Contexta(
            workspace=tmp_path / f"round-{next(workspaces)}",
            config={"project_name": "bench", "capture": {"persist": False}},
        )
        return (ctx, ctx.run("throughput").stage("train")), {}

    def body(ctx: Contexta, stage: StageScope) -> None:
        metric = stage.metric
        for step in range(calls):
            metric("loss", 0.5, step=step)
        assert ctx.flush().complete

    def check(ctx: Contexta, stage: StageScope) -> None:
        log = next(sink for sink in ctx.sinks if isinstance(sink, LocalJsonlSink)).file_path_for("RECORD")
        stats = ctx.capture_stats()
        ctx.close()
        assert (stats.dropped, stats.failed, stats.lost) == (0, 0, 0)
        written = 0
        for segment in log_segments(log.parent, "RECORD"):  # sealed (compressed) ones, then the active
            with open_segment(segment.path) as lines:
                written += sum(1 for line in lines if b'"MetricRecord"' in line)
        assert written == calls

    benchmark.extra_info["calls_per_round"] = calls
    benchmark.pedantic(body, setup=setup, teardown=check, rounds=rounds, iterations=1)
    if benchmark.stats is not None:
        benchmark.extra_info["records_per_s"] = round(calls / benchmark.stats.stats.mean)
        benchmark.extra_info["best_records_per_s"] = round(calls / benchmark.stats.stats.min)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc")
@pytest.mark.benchmark(group="metric-memory")
def test_memory_stays_bounded_by_the_queue(benchmark: Any, tmp_path: Path) -> None:
    """A 5,000,000-call loop (store on, default queue) must not grow RSS by more than 100 MB: the
    queue is bounded and drained, so memory does not follow the number of calls."""
    calls = MEMORY_CALLS if benchmark.enabled else SMOKE_MEMORY_CALLS
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "bench"})
    samples: list[int] = []

    def body() -> None:
        with ctx.run("memory") as run, run.stage("train") as stage:
            metric = stage.metric
            for step in range(calls):
                metric("loss", 0.5, step=step)
                if step % 100_000 == 0:
                    samples.append(_rss_bytes())
        samples.append(_rss_bytes())

    try:
        benchmark.pedantic(body, rounds=1, iterations=1)
    finally:
        stats = ctx.capture_stats()
        ctx.close()
    growth_mb = (max(samples) - samples[0]) / 2**20
    benchmark.extra_info["calls"] = calls
    benchmark.extra_info["rss_start_mb"] = round(samples[0] / 2**20, 1)
    benchmark.extra_info["rss_growth_mb"] = round(growth_mb, 1)
    assert stats.written >= calls and stats.dropped == 0
    assert growth_mb < 100, f"RSS grew by {growth_mb:.1f} MB over {calls} calls"
