"""The canonical store in PostgreSQL (issue 19): capture throughput from one process and from eight,
a filtered run listing over 100,000 runs, and one series of 1,000,000 points read back.

Run with `python -m pytest benchmarks/test_postgres_store.py --benchmark-enable`. The server is a
private PostgreSQL started for the module from the machine's installation (tests/services.py) with
its default durability (fsync and synchronous commit on): "records/s" means committed to disk. Without
`--benchmark-enable` the workloads are small and each runs once, as a smoke test.

The 100,000 runs are 100 runs captured live (benchmarks/sweeps.py: tags, a config snapshot, 20
metrics each) and then copied inside PostgreSQL, each copy a new execution with its own name, start
time and values, so the listing reads the same shape of rows capture writes. Figures only: nothing
here asserts a time.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contexta import Contexta, Workspace
from sweeps import benchmarks_enabled, capture_sweep

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from services import PostgresServer, database, start_postgres


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    started = start_postgres(durable=True)
    try:
        yield started
    finally:
        started.stop()


_CAPTURE = textwrap.dedent(
    """
    import sys, time
    from contexta import Contexta

    workspace, url, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ctx = Contexta(workspace=workspace, config={"project_name": "bench", "store": {"url": url}})
    started = time.perf_counter()
    with ctx.run(name) as run, run.stage("train") as stage:
        metric = stage.metric
        for step in range(count):
            metric("loss", step * 0.5, step=step)
    ctx.flush()
    print(time.perf_counter() - started)
    stats = ctx.capture_stats()
    ctx.close()
    assert (stats.failed, stats.lost) == (0, 0), stats
    """
)


def _capture_in_processes(url: str, workspace: Path, processes: int, count: int) -> float:
    """Wall seconds until `processes` processes each captured `count` metrics into `url`, stored."""
    started = time.perf_counter()
    running = [
        subprocess.Popen(
            [sys.executable, "-c", _CAPTURE, str(workspace / f"p{n}"), url, f"w{n}", str(count)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    for process in running:
        process.communicate(timeout=900)
        assert process.returncode == 0
    return time.perf_counter() - started


@pytest.mark.benchmark(group="postgres")
@pytest.mark.parametrize("processes", [1, 8])
def test_records_per_second_into_postgres(
    benchmark: Any, server: PostgresServer, tmp_path: Path, processes: int
) -> None:
    if processes == 1:
        total = 1_000_000 if benchmark.enabled else 20_000
    else:
        total = 8 * 200_000 if benchmark.enabled else 16_000
    per_process = total // processes
    rounds: list[float] = []

    def one_round() -> None:
        with database(server) as url:
            seconds = _capture_in_processes(url, tmp_path / f"r{len(rounds)}", processes, per_process)
            rounds.append(total / seconds)

    benchmark.pedantic(one_round, rounds=3 if benchmark.enabled else 1, iterations=1)
    benchmark.extra_info.update(
        processes=processes,
        records=total,
        records_per_s_mean=round(statistics.mean(rounds)),
        records_per_s_worst=round(min(rounds)),
    )


# Per table: the columns copied, and what each copy puts in them (`c` is the copy's number).
_CLONED = {
    "runs": {
        "execution_id": "execution_id || '-' || c",
        "run_ref": "run_ref || '-' || c",
        "project_ref": "project_ref",
        "name": "name || '-' || c",
        "status": "status",
        "started_at": "started_at",
        "ended_at": "ended_at",
        "tags": "tags",
        "config_snapshot": "config_snapshot",
        "started_key": "started_key || '-' || c",
    },
    "metric_series": {
        "execution_id": "execution_id || '-' || c",
        "run_ref": "run_ref || '-' || c",
        **{name: name for name in ("stage_ref", "batch_ref", "sample_ref", "deployment_ref", "key")},
        **{name: name for name in ("value_type", "unit", "extras", "point_count", "first_seq", "last_seq")},
        "last_value": "mod(last_value * 1000 + c * 7, 1000) / 1000",
        **{name: name for name in ("min_value", "max_value", "extremes_known")},
    },
    "stages": {
        "execution_id": "execution_id || '-' || c",
        "stage_ref": "stage_ref",
        "run_ref": "run_ref || '-' || c",
        **{name: name for name in ("name", "status", "started_at", "ended_at", "order_index")},
    },
}


def _clone_runs(url: str, copies: int) -> int:
    """Each stored execution copied `copies` times inside PostgreSQL (see the module docstring)."""
    with psycopg.connect(url, autocommit=True) as connection:
        # Copies are new executions of new names: each is number 1 and the latest (the columns'
        # defaults), which the numbering trigger would work out one row at a time.
        connection.execute("ALTER TABLE runs DISABLE TRIGGER USER")
        for table, columns in _CLONED.items():
            connection.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns.values())} "
                f"FROM {table}, generate_series(1, %s) c",
                (copies,),
            )
        connection.execute("ALTER TABLE runs ENABLE TRIGGER USER")
        connection.execute("VACUUM ANALYZE")  # as autovacuum leaves a live server
        row = connection.execute("SELECT count(*) FROM runs").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.benchmark(group="postgres")
def test_list_runs_with_a_filter_over_many_runs(
    benchmark: Any, request: pytest.FixtureRequest, server: PostgresServer, tmp_path: Path
) -> None:
    enabled = benchmarks_enabled(request.config)
    with database(server) as url:
        workspace = tmp_path / "sweep"
        capture_sweep(workspace, 100, "sweep", store_url=url)
        runs = _clone_runs(url, 999 if enabled else 9)
        with Workspace(workspace, config={"project_name": "sweep", "store": {"url": url}}) as reader:
            query = "metrics.evaluate:m12 > 0.9 and tags.team = 'vision'"
            found = benchmark.pedantic(
                lambda: reader.list_runs(filter=query, sort="-metrics.m12", limit=50),
                rounds=10 if enabled else 1,
                iterations=1,
            )
        benchmark.extra_info.update(runs=runs, filter=query, found=len(found))


@pytest.mark.benchmark(group="postgres")
def test_one_series_of_a_million_points_read_back(
    benchmark: Any, request: pytest.FixtureRequest, server: PostgresServer, tmp_path: Path
) -> None:
    points = 1_000_000 if benchmarks_enabled(request.config) else 20_000
    with database(server) as url:
        workspace = tmp_path / "long"
        config = {"project_name": "long", "store": {"url": url}}
        with (
            Contexta(workspace=workspace, config=config) as ctx,
            ctx.run("long") as run,
            run.stage("train") as stage,
        ):
            metric = stage.metric
            for step in range(points):
                metric("loss", 1.0 / (step + 1), step=step)
        with Workspace(workspace, config={"project_name": "long", "store": {"url": url}}) as reader:
            series = benchmark.pedantic(
                lambda: reader.get_metric_series("long", "loss"),
                rounds=5 if benchmarks_enabled(request.config) else 1,
                iterations=1,
            )
        assert len(series.points) == points
        benchmark.extra_info.update(points=points)
