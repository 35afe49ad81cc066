"""The dashboard (issue 18), measured only: what a page waits for.

Run with `python -m pytest benchmarks/test_ui.py --benchmark-enable -s`. Without that flag (the
project default is `--benchmark-disable`) each measurement runs once on small data as a smoke test.

- run table: `GET /api/runs` first page (50 rows, with a param and three metric columns, newest first
  and sorted by a metric) over 10,000 runs x 20 metrics captured live; target < 200 ms.
- live delivery: a capturing process writes about 100,000 points/s and, every 100 ms, one `probe`
  point whose value is the wall-clock time it was captured, then flushes; a client watching the
  probe series on `GET /api/stream` of a real `contexta ui` measures arrival time minus that value;
  target < 1 s.
- memory while browsing: a real `contexta ui` serves a 1,000,000-point series; the chart's requests
  (full width, zooms down to 1%, the time axis) are made and the server's resident memory (VmRSS)
  read after each one.

`extra_info` (and the printed line) holds means and worst cases.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from contexta import Contexta, Workspace
from sweeps import benchmarks_enabled, capture_sweep

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from contexta._ui._app import build_app

SRC = Path(__file__).resolve().parents[1] / "src"
RUNS = 10_000
SMOKE_RUNS = 200
ROUNDS = 20
BIG_SERIES = 1_000_000
SMOKE_SERIES = 20_000
RATE = 100_000  # points per second while probes are timed
PROBES = 50


def _start_ui(workspace: Path) -> tuple[subprocess.Popen[str], str]:
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen(
        [sys.executable, "-m", "contexta", "ui", "--workspace", str(workspace), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert process.stdout is not None
    found = re.search(r"http://\S+", process.stdout.readline())
    assert found is not None
    return process, found.group(0)


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _report(benchmark: Any, **info: Any) -> None:
    benchmark.extra_info.update(info)
    print(f"\n{benchmark.name}: {info}")


# -- the run table ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    runs = RUNS if benchmarks_enabled(request.config) else SMOKE_RUNS
    return capture_sweep(tmp_path_factory.mktemp("ui-sweep") / ".contexta", runs, "sweep"), runs


PAGES = [
    ("newest", {"columns": "params.optimizer.lr,metrics.m03,metrics.m12,metrics.m19", "limit": "50"}),
    ("by-metric", {"columns": "params.optimizer.lr,metrics.m03", "sort": "-metrics.m03", "limit": "50"}),
    ("filtered", {"columns": "metrics.m03", "filter": "metrics.m03 > 0.5 and params.optimizer.lr < 0.1"}),
]


@pytest.mark.benchmark(group="ui")
@pytest.mark.parametrize(("page", "params"), PAGES, ids=[page for page, _ in PAGES])
def test_run_table_first_page(
    benchmark: Any, sweep: tuple[Path, int], page: str, params: dict[str, str]
) -> None:
    workspace, runs = sweep
    with Workspace(workspace) as reader, TestClient(build_app(reader), base_url="http://127.0.0.1") as client:

        def first_page() -> Any:
            response = client.get("/api/runs", params=params)
            assert response.status_code == 200, response.text
            return response.json()

        body = benchmark.pedantic(
            first_page, rounds=ROUNDS if benchmark.enabled else 1, iterations=1, warmup_rounds=1
        )
    assert body["rows"]
    if benchmark.stats is not None:
        stats = benchmark.stats.stats
        _report(
            benchmark, runs=runs, mean_ms=round(stats.mean * 1000, 1), worst_ms=round(stats.max * 1000, 1)
        )


# -- live delivery ---------------------------------------------------------------------------------

_CAPTURE = """
import sys, time
from contexta import Contexta
workspace, rate, probes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with Contexta(workspace=workspace, config={"project_name": "live"}) as ctx, ctx.run("load") as run:
    run.metric("probe", time.time(), step=0)
    ctx.flush()
    print("open", flush=True)
    sys.stdin.readline()
    step, started = 0, time.monotonic()
    for probe in range(1, probes + 1):
        # 100 ms of load at `rate` points/s, in slices of 1,000, then one probe, flushed.
        until = started + probe * 0.1
        while time.monotonic() < until:
            for _ in range(1000):
                step += 1
                run.metric("load", step * 0.5, step=step)
            pause = started + step / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        run.metric("probe", time.time(), step=probe)
        ctx.flush()
    print("points", step, "seconds", round(time.monotonic() - started, 2), flush=True)
"""


@pytest.mark.benchmark(group="ui")
def test_sse_delivery_latency_under_concurrent_capture(benchmark: Any, tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": "live"}) as ctx, ctx.run("first") as run:
        run.metric("loss", 1.0)
    probes = PROBES if benchmark.enabled else 5
    capture = subprocess.Popen(
        [sys.executable, "-c", _CAPTURE, str(workspace), str(RATE), str(probes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    server, url = _start_ui(workspace)
    latencies: list[float] = []
    done = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(timeout=60) as client,
            client.stream("GET", url + "api/stream?series=run:live.load||probe|0") as response,
        ):
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                arrived = time.time()
                for update in orjson.loads(line[6:]).get("series", []):
                    latencies.extend(
                        arrived - value
                        for value, step in zip(update["values"], update["steps"], strict=True)
                        if step
                    )
                if len(latencies) >= probes or done.is_set():
                    return

    def session() -> list[str]:
        assert capture.stdin is not None and capture.stdout is not None
        assert capture.stdout.readline().strip() == "open"
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        time.sleep(1.0)  # the stream is open and has sent the first probe
        capture.stdin.write("\n")
        capture.stdin.flush()
        summary = capture.stdout.readline().split()
        listener.join(30)
        done.set()
        return summary

    try:
        summary = benchmark.pedantic(session, rounds=1, iterations=1)
    finally:
        capture.kill()
        capture.wait()
        _stop(server)
    assert len(latencies) >= probes * 0.9, latencies
    points, seconds = int(summary[1]), float(summary[3])
    _report(
        benchmark,
        probes=len(latencies),
        capture_points_per_s=round(points / seconds),
        mean_ms=round(statistics.fmean(latencies) * 1000, 1),
        worst_ms=round(max(latencies) * 1000, 1),
    )


# -- memory while a 1M-point run is browsed ---------------------------------------------------------


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def big_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, int]]:
    points = BIG_SERIES if benchmarks_enabled(request.config) else SMOKE_SERIES
    workspace = tmp_path_factory.mktemp("ui-big") / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": "big"}) as ctx, ctx.run("million") as run:
        for step in range(points):
            run.metric("loss", 1.0 / (1 + step) + (step % 97) * 1e-4, step=step)
    yield workspace, points


@pytest.mark.benchmark(group="ui")
def test_server_memory_while_a_million_point_run_is_browsed(
    benchmark: Any, big_run: tuple[Path, int]
) -> None:
    workspace, points = big_run
    server, url = _start_ui(workspace)
    zooms = [
        (0, points),
        (0, points // 2),
        (points // 4, points // 4 + points // 10),
        (points // 2, points // 2 + points // 100),
    ]
    timings: list[float] = []
    rss: list[float] = []

    def browse() -> None:
        with httpx.Client(timeout=120) as client:
            client.get(url + "api/runs").raise_for_status()
            rss.append(_rss_mb(server.pid))
            for _ in range(3 if benchmark.enabled else 1):
                for low, high in zooms:
                    started = time.perf_counter()
                    response = client.get(
                        url + "api/runs/million/series",
                        params={"key": "loss", "width": 1500, "x0": low, "x1": high},
                    )
                    timings.append(time.perf_counter() - started)
                    response.raise_for_status()
                    assert len(response.json()["xs"]) <= 2 * 1500 + 2
                    rss.append(_rss_mb(server.pid))
                response = client.get(url + "api/runs/million/series", params={"key": "loss", "x": "time"})
                response.raise_for_status()
                rss.append(_rss_mb(server.pid))

    try:
        benchmark.pedantic(browse, rounds=1, iterations=1)
    finally:
        _stop(server)
    _report(
        benchmark,
        points=points,
        rss_idle_mb=round(rss[0], 1),
        rss_peak_mb=round(max(rss), 1),
        rss_last_mb=round(rss[-1], 1),
        series_mean_ms=round(statistics.fmean(timings) * 1000, 1),
        series_worst_ms=round(max(timings) * 1000, 1),
    )
