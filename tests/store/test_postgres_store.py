"""The canonical store in PostgreSQL (`store.url`): many processes writing into one store, a server
that goes away mid-run and comes back, and a database that is not ours.

These run against real PostgreSQL servers (tests/services.py): the session's, for a fresh database
per test, and a private one for the outage, which is stopped and started again under a live run.
"""

from __future__ import annotations

import math
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
from contexta.errors import StoreError
from services import PostgresServer, database, start_postgres

PROCESSES = 8
OUTAGE_S = 10.0
METRICS_PER_PROCESS = 100_000


def _contexta(workspace: Path, url: str, project: str = "team") -> Contexta:
    return Contexta(workspace=workspace, config={"project_name": project, "store": {"url": url}})


_WRITER = textwrap.dedent(
    """
    import sys
    from contexta import Contexta

    workspace, url, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ctx = Contexta(workspace=workspace, config={"project_name": "team", "store": {"url": url}})
    with ctx.run(name) as run, run.stage("train") as stage:
        for step in range(count):
            stage.metric("loss", 1.0 / (step + 1), step=step)
            if step % 10_000 == 0:
                stage.event("checkpoint", message=f"step {step}")
    report = ctx.flush()
    stats = ctx.capture_stats()
    ctx.close()
    assert (stats.failed, stats.lost, stats.dropped) == (0, 0, 0), stats
    """
)


def test_eight_processes_capture_into_one_store_and_nothing_is_lost_or_doubled(
    postgres_url: str, tmp_path: Path
) -> None:
    """Each process on its own workspace (as on its own machine), all into one PostgreSQL store."""
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WRITER,
                str(tmp_path / f"node-{n}"),
                postgres_url,
                f"worker-{n}",
                str(METRICS_PER_PROCESS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=600)
        assert writer.returncode == 0, stderr
        assert "Warning" not in stderr, stderr

    with Workspace(tmp_path / "reader", config={"store": {"url": postgres_url}}) as reader:
        runs = reader.list_runs()
        assert sorted(run.name for run in runs) == [f"worker-{n}" for n in range(PROCESSES)]
        assert {run.status for run in runs} == {"completed"}
        for run in runs:
            points = reader.get_metric_series(run.run_id, "loss").points
            assert [point.step for point in points] == list(range(METRICS_PER_PROCESS))
            assert points[-1].value == 1.0 / METRICS_PER_PROCESS
    with psycopg.connect(postgres_url) as connection:
        (events,) = connection.execute("SELECT count(*) FROM records WHERE key = 'checkpoint'").fetchone()
    assert events == PROCESSES * METRICS_PER_PROCESS // 10_000


@pytest.fixture
def private_server() -> Iterator[PostgresServer]:
    """A server of this test's own, to stop and start again."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def test_a_server_stopped_mid_run_loses_nothing_and_the_run_completes(
    private_server: PostgresServer, tmp_path: Path
) -> None:
    """Batches refused while the server is down are parked on this machine and delivered when it
    is back, in capture order and exactly once; capture never waits for the server."""
    with database(private_server) as url:
        ctx = _contexta(tmp_path / "ws", url)
        with ctx.run("outage") as run, run.stage("train") as stage:
            for step in range(3_000):
                stage.metric("loss", float(step), step=step)
            ctx.flush()
            private_server.halt()
            halted_at = time.monotonic()
            try:
                with pytest.warns(Warning, match="parked"):
                    for step in range(3_000, 6_000):
                        stage.metric("loss", float(step), step=step)
                        if step % 500 == 0:
                            time.sleep(0.2)  # batches keep coming while the server is away
                    ctx.flush()
            finally:
                time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - halted_at)))
                private_server.restart()
            for step in range(6_000, 9_000):
                stage.metric("loss", float(step), step=step)
        report = ctx.flush()
        ctx.close()
        assert report.complete

        with Workspace(tmp_path / "reader", config={"store": {"url": url}}) as reader:
            (stored,) = reader.list_runs()
            assert stored.status == "completed"
            steps = [point.step for point in reader.get_metric_series("outage", "loss").points]
        assert steps == list(range(9_000)), "every point once, in capture order"
        assert not list((tmp_path / "ws" / "cache" / "outbox").rglob("*.jsonl")), "nothing left parked"


def test_a_database_holding_other_tables_is_refused_and_left_untouched(
    postgres_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE invoices(id int)")
    with pytest.raises(StoreError) as caught:
        _contexta(tmp_path / "ws", postgres_url)
    assert caught.value.code == "store_foreign"
    with psycopg.connect(postgres_url) as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
    assert tables == ["invoices"]


def test_a_store_of_a_newer_schema_is_refused(postgres_url: str, tmp_path: Path) -> None:
    _contexta(tmp_path / "ws", postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("UPDATE contexta_schema SET version = version + 1")
    with pytest.raises(StoreError) as caught:
        _contexta(tmp_path / "ws", postgres_url)
    assert caught.value.code == "store_version_unsupported"


def _schema_of(url: str) -> tuple[int, list[str]]:
    with psycopg.connect(url) as connection:
        version = connection.execute("SELECT max(version) FROM contexta_schema").fetchone()
        indexes = connection.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'metric_series' ORDER BY indexname"
        ).fetchall()
    assert version is not None
    return int(version[0]), [name for (name,) in indexes]


def test_a_store_of_an_older_schema_is_brought_up_to_date_by_the_first_writer(
    postgres_url: str, tmp_path: Path
) -> None:
    """A team store made by an earlier contexta: readers read it as it is, the next writer migrates it
    in place, and every run captured before is still found by a filtered listing."""
    with _contexta(tmp_path / "ws", postgres_url) as ctx, ctx.run("before") as run:
        run.stage("evaluate").metric("accuracy", 0.91)
    with psycopg.connect(postgres_url, autocommit=True) as connection:  # as schema 6 left it
        connection.execute("DROP INDEX metric_series_by_value")
        connection.execute("DELETE FROM contexta_schema")
        connection.execute("INSERT INTO contexta_schema(version) VALUES (6)")
    config = {"project_name": "team", "store": {"url": postgres_url}}
    with Workspace(tmp_path / "ws", config=config) as reader:
        assert [r.name for r in reader.list_runs(filter="metrics.accuracy > 0.9")] == ["before"]
    assert _schema_of(postgres_url) == (
        6,
        [
            "metric_series_by_deployment",
            "metric_series_by_key",
            "metric_series_execution_id_run_ref_key_stage_ref_batch_ref__key",
            "metric_series_pkey",
        ],
    )
    with _contexta(tmp_path / "ws", postgres_url) as ctx, ctx.run("after") as run:
        run.stage("evaluate").metric("accuracy", 0.95)
    version, indexes = _schema_of(postgres_url)
    assert (version, "metric_series_by_value" in indexes) == (7, True)
    with Workspace(tmp_path / "ws", config=config) as reader:
        assert [r.name for r in reader.list_runs(filter="metrics.accuracy > 0.9")] == ["before", "after"]


def test_an_unreachable_server_is_a_clear_error_that_never_shows_the_password(tmp_path: Path) -> None:
    url = "postgresql://team:hunter2@127.0.0.1:9/contexta"  # port 9: nothing listens there
    with pytest.raises(StoreError) as caught:
        _contexta(tmp_path / "ws", url)
    assert caught.value.code == "store_unreachable"
    assert "hunter2" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_values_come_back_exactly_as_captured(postgres_url: str, tmp_path: Path) -> None:
    """Floats keep every digit, ints stay ints, and NaN and infinities are values, as in SQLite."""
    values = [0.1 + 0.2, 1e300, 5e-324, -0.0, 2**53 + 1, math.inf, -math.inf, 1e20]
    with _contexta(tmp_path / "ws", postgres_url) as ctx:
        with ctx.run("exact") as run, run.stage("s") as stage:
            for step, value in enumerate(values):
                stage.metric("v", value, step=step)
            stage.metric("nan", math.nan)
        points = ctx.get_metric_series("exact", "v").points
        assert [point.value for point in points] == values
        assert [type(point.value) for point in points] == [type(value) for value in values]
        assert math.isnan(ctx.get_metric_series("exact", "nan").points[0].value)
        (run_record,) = ctx.list_runs(filter="metrics.v > 1e19")
        assert run_record.name == "exact"


def test_the_dashboard_serves_a_postgresql_store_and_sees_its_commits(
    postgres_url: str, tmp_path: Path
) -> None:
    """The dashboard's run table reads the shared store, and its change watcher notices a commit
    another machine makes (PostgreSQL's write-ahead position, where SQLite has its data_version)."""
    import warnings

    with warnings.catch_warnings():  # Starlette would rather have httpx2; httpx works the same here
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from contexta._ui._app import build_app
    from contexta._ui._live import ChangeWatcher
    from contexta.store import open_store_database

    with _contexta(tmp_path / "a", postgres_url) as ctx, ctx.run("first") as run, run.stage("s") as stage:
        stage.metric("loss", 0.5)
    config = {"project_name": "team", "store": {"url": postgres_url}}
    with (
        Workspace(tmp_path / "viewer", config=config) as workspace,
        TestClient(build_app(workspace), base_url="http://127.0.0.1") as client,
    ):
        page = client.get("/api/runs")
        assert page.status_code == 200, page.text
        table = page.json()
        assert [dict(zip(table["columns"], row, strict=True))["name"] for row in table["rows"]] == ["first"]
    watcher = ChangeWatcher(open_store_database(tmp_path / "unused.db", postgres_url, read_only=True))
    before = watcher._marker()
    with _contexta(tmp_path / "b", postgres_url) as ctx, ctx.run("second") as run:
        run.event("hello", message="from another machine")
    assert watcher._marker() != before


@pytest.mark.parametrize("command", [["du"], ["gc", "--dry-run"], ["backup", "DEST"]])
def test_file_maintenance_commands_say_the_store_is_the_servers(
    postgres_url: str,
    tmp_path: Path,
    command: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from contexta.cli import main

    with _contexta(tmp_path / "ws", postgres_url) as ctx, ctx.run("r"):
        pass
    monkeypatch.setenv("CONTEXTA_STORE_URL", postgres_url)
    argv = [str(tmp_path / "copy") if part == "DEST" else part for part in command]
    assert main([*argv, "--workspace", str(tmp_path / "ws")]) == 1
    error = capsys.readouterr().err
    assert "PostgreSQL" in error and "contexta" in error


def test_contexta_sync_without_a_target_delivers_what_an_outage_left_parked(
    private_server: PostgresServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process that ended while the server was down leaves its batches parked; `contexta sync`
    (no --to) delivers them to the workspace's store once it is back, once."""
    from contexta.cli import main

    with database(private_server) as url:
        workspace = tmp_path / "ws"
        ctx = _contexta(workspace, url)
        with pytest.warns(Warning, match="parked"):
            with ctx.run("short") as run, run.stage("train") as stage:
                stage.metric("loss", 1.0, step=0)
                ctx.flush()
                private_server.halt()
                for step in range(1, 100):
                    stage.metric("loss", 1.0 / (step + 1), step=step)
            ctx.close()
        private_server.restart()
        monkeypatch.setenv("CONTEXTA_STORE_URL", url)
        assert main(["sync", "--workspace", str(workspace)]) == 0
        assert "still parked" in capsys.readouterr().out
        assert main(["sync", "--workspace", str(workspace)]) == 0  # nothing left: nothing twice
        with Workspace(tmp_path / "reader", config={"store": {"url": url}}) as reader:
            points = reader.get_metric_series("short", "loss").points
            assert [point.step for point in points] == list(range(100))
            assert reader.get_run("short").status == "completed"


def test_a_filter_narrowed_in_the_server_still_judges_each_run_by_its_latest_value(
    postgres_url: str, tmp_path: Path
) -> None:
    """A PostgreSQL search first keeps the runs with any series passing a metric comparison (in the
    server), then judges each by the value captured last: the narrowing may keep too many, never
    too few."""
    with _contexta(tmp_path / "ws", postgres_url) as ctx:
        for name, first, last in (("rose", 0.2, 0.95), ("fell", 0.95, 0.2), ("nan", 0.95, math.nan)):
            with ctx.run(name) as run:
                with run.stage("train") as stage:
                    stage.metric("score", first)
                with run.stage("evaluate") as stage:
                    stage.metric("score", last)
        assert [run.name for run in ctx.list_runs(filter="metrics.score > 0.9")] == ["rose"]
        assert [run.name for run in ctx.list_runs(filter="metrics.score < 0.5 and name != 'x'")] == ["fell"]
        assert [run.name for run in ctx.list_runs(filter="metrics.train:score > 0.9", sort="name")] == [
            "fell",
            "nan",
        ]
        assert [run.name for run in ctx.list_runs(filter="not metrics.score > 0.9", sort="name")] == [
            "fell",
            "nan",
        ]


_KILLED_MID_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from contexta import Contexta

    ctx = Contexta(workspace=sys.argv[1], config={"project_name": "team", "store": {"url": sys.argv[2]}})
    run = ctx.run("killed").__enter__()
    stage = run.stage("train").__enter__()
    for step in range(100):
        stage.metric("loss", 1.0 / (step + 1), step=step)
    ctx.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_run_whose_process_was_killed_is_closed_interrupted_by_the_next_contexta(
    postgres_url: str, tmp_path: Path
) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_RUN, str(tmp_path / "ws"), postgres_url], check=False
    )
    assert killed.returncode == -9
    with _contexta(tmp_path / "ws", postgres_url) as ctx:
        (run,) = ctx.list_runs()
        assert (run.status, run.end_reason) == ("failed", "interrupted")
        assert [(stage.status, stage.end_reason) for stage in ctx.list_stages("killed")] == [
            ("failed", "interrupted")
        ]
        assert len(ctx.get_metric_series("killed", "loss").points) == 100


def test_a_nul_in_captured_text_is_stored_as_u_fffd_and_costs_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    """PostgreSQL text cannot hold NUL, which SQLite keeps; the value is stored with U+FFFD instead
    of its batch being refused (and everything after it held back)."""
    with _contexta(tmp_path / "ws", postgres_url) as ctx:
        with ctx.run("nul", code_revision="abc\x00def", tags={"note": "a\x00b"}) as run:
            run.metric("loss", 0.5)
            run.event("said", message="x\x00y")
        report = ctx.flush()
        assert report.ok and ctx.capture_stats().failed == 0
        (stored,) = ctx.list_runs()
        assert stored.code_revision == "abc\ufffddef"
        assert stored.tags == {"note": "a\x00b"}  # inside JSON text, NUL is the escape \\u0000: kept
        assert ctx.get_metric_series("nul", "loss").points[0].value == 0.5


def test_a_batch_delivered_again_after_a_lost_commit_answer_is_stored_once(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops after COMMIT reached the server but before its answer came back: the
    batch is parked, with the id it was first written under, and its redelivery adds nothing."""
    from contexta.capture import StoreSink

    write = StoreSink.write
    lost: list[str | None] = []

    def commit_then_lose_the_answer(sink: StoreSink, batch: Any) -> None:
        write(sink, batch)
        if not lost and any(type(item) is tuple for item in batch.items):  # the first metrics
            lost.append(batch.batch_id)
            raise StoreError("the connection dropped before COMMIT was answered", code="store_unreachable")

    monkeypatch.setattr(StoreSink, "write", commit_then_lose_the_answer)
    with _contexta(tmp_path / "ws", postgres_url) as ctx:
        with pytest.warns(Warning, match="parked"), ctx.run("r") as run, run.stage("s") as stage:
            for step in range(50):
                stage.metric("loss", float(step), step=step)
            ctx.flush()
        for step in range(50, 60):
            with ctx.run("r", resume=True) as run:
                run.metric("later", float(step), step=step)
        assert ctx.flush().complete
        assert lost and lost[0] is not None and lost[0].startswith("live:")
        assert [point.step for point in ctx.get_metric_series("r", "loss").points] == list(range(50))
        assert not list((tmp_path / "ws" / "cache" / "outbox").rglob("*.jsonl"))
