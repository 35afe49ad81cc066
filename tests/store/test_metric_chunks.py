"""Metric points stored as columns per series and batch come back exactly as they were captured."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.capture import CaptureWarning, LocalJsonlSink, read_capture_log
from contexta.contract import MetricPayload, MetricRecord, RecordEnvelope

PROJECT = "chunks"


def _open(workspace: Path, **capture: object) -> Contexta:
    return Contexta(workspace=workspace, config={"project_name": PROJECT, "capture": capture})


def _hand_written(run_ref: str, key: str, value: float, *, step: int) -> MetricRecord:
    """A metric written by hand into the store, with its own ref and timestamps."""
    return MetricRecord(
        envelope=RecordEnvelope(
            record_ref=f"record:{PROJECT}.r.by-hand-1",
            record_type="metric",
            recorded_at="2025-01-01T00:00:00Z",
            observed_at="2025-01-01T00:00:00Z",
            producer_ref="notebook",
            run_ref=run_ref,
        ),
        payload=MetricPayload(metric_key=key, value=value, value_type="float64", step=step),
    )


def test_interleaved_samples_keep_capture_order_per_sample_and_per_key(tmp_path: Path) -> None:
    ctx = _open(tmp_path / ".contexta")
    captured: list[tuple[str, int]] = []
    with ctx.run("r") as run, run.stage("eval") as stage:
        samples = [stage.sample(f"case-{number}") for number in range(3)]
        for step in range(30):  # round-robin: every batch holds points of all three samples
            sample = samples[step % 3]
            sample.metric("latency", float(step), step=step)
            captured.append((sample.ref, step))
        for sample in samples:
            sample.close()
    series = ctx.get_metric_series("r", "latency")
    assert [(point.sample_id, point.step) for point in series.points] == captured
    assert [point.value for point in series.points] == [float(step) for _, step in captured]
    ctx.close()


def test_ints_and_floats_of_one_key_keep_their_types_and_order(tmp_path: Path) -> None:
    ctx = _open(tmp_path / ".contexta")
    values: list[float | int] = [1, 0.5, 2, 0.25, 3]
    with ctx.run("r") as run:
        for step, value in enumerate(values):
            run.metric("mixed", value, step=step)
    points = ctx.get_metric_series("r", "mixed").points
    assert [point.value for point in points] == values
    assert [type(point.value) for point in points] == [type(value) for value in values]
    ctx.close()


@pytest.mark.sqlite_only("reads the SQLite file's rows directly")
def test_a_series_spanning_many_batches_is_complete_and_its_latest_is_the_last(tmp_path: Path) -> None:
    ctx = _open(tmp_path / ".contexta", max_batch_size=64)
    with ctx.run("r") as run, run.stage("train") as stage:
        for step in range(5_000):
            stage.metric("loss", 1.0 / (step + 1), step=step)
    series = ctx.get_metric_series("r", "loss")
    assert series.steps == tuple(range(5_000))
    assert series.latest is not None and series.latest.value == 1.0 / 5_000
    assert ctx.select_best_run(["r"], "loss", higher_is_better=False) == f"run:{PROJECT}.r"
    ctx.close()
    with sqlite3.connect(tmp_path / ".contexta" / "metadata" / "contexta.db") as connection:
        (chunks,) = connection.execute("SELECT count(*) FROM metric_chunks").fetchone()
    assert chunks > 5_000 // 64  # one chunk per stored batch, not one row per point


def test_the_store_names_each_point_as_the_capture_log_does(tmp_path: Path) -> None:
    ctx = _open(tmp_path / ".contexta")
    with ctx.run("r") as run, run.stage("train") as stage:
        stage.metrics({"loss": 0.5, "accuracy": 0.75}, step=0)
        stage.event("checkpoint", message="saved")
        with stage.batch("b0") as batch:
            batch.metric("loss", 0.25, unit="nats", step=1, tags={"device": "cpu"})
    log = next(sink for sink in ctx.sinks if isinstance(sink, LocalJsonlSink)).file_path_for("RECORD")
    stored = ctx.record_store.scan(run=f"run:{PROJECT}.r")
    ctx.close()
    lines = [line["payload"] for line in read_capture_log(log).lines]
    assert [record.to_dict(omit_none=True) for record in stored] == [
        MetricRecord.from_dict(line).to_dict(omit_none=True)
        if line["envelope"]["record_type"] == "metric"
        else line
        for line in lines
    ]


def test_hand_written_and_captured_points_of_one_key_merge_in_capture_order(tmp_path: Path) -> None:
    ctx = _open(tmp_path / ".contexta")
    with ctx.run("r") as run:
        run.metric("score", 0.1, step=0)
    run_ref = f"run:{PROJECT}.r"
    written = _hand_written(run_ref, "score", 0.2, step=1)
    assert ctx.record_store.append(written).ok
    with ctx.run("r", resume=True) as run:
        run.metric("score", 0.3, step=2)
    points = ctx.get_metric_series(run_ref, "score").points
    assert [(point.step, point.value) for point in points] == [(0, 0.1), (1, 0.2), (2, 0.3)]
    assert points[1].observed_at == "2025-01-01T00:00:00Z"
    scanned = ctx.record_store.scan(run=run_ref, key="score")
    assert scanned[1] == written
    again = ctx.record_store.append(written)
    assert [rejected.reason for rejected in again.rejected] == ["a record with this ref is already stored"]
    ctx.close()


@pytest.mark.sqlite_only("reads the SQLite file's chunk rows directly")
def test_running_a_name_again_keeps_the_earlier_executions_points_apart(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    for attempt in range(2):
        ctx = _open(workspace)
        with ctx.run("r") as run:
            for step in range(100):
                run.metric("loss", float(attempt), step=step)
        ctx.close()
    ctx = _open(workspace)
    latest, first = ctx.get_metric_series("r", "loss").points, ctx.get_metric_series("r@1", "loss").points
    assert len(latest) == 100 and {point.value for point in latest} == {1.0}
    assert len(first) == 100 and {point.value for point in first} == {0.0}
    ctx.close()
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        orphans = connection.execute(
            "SELECT count(*) FROM metric_chunks WHERE series_id NOT IN (SELECT series_id FROM metric_series)"
        ).fetchone()[0]
        series = connection.execute("SELECT point_count, extras FROM metric_series").fetchall()
    assert orphans == 0
    assert series == [(100, ""), (100, "")]  # one series per execution


@pytest.mark.sqlite_only("reads the SQLite file's chunk rows directly")
def test_samples_interleaved_in_runs_of_any_length_keep_every_point_in_order(tmp_path: Path) -> None:
    """Concurrent tasks capture a few points per turn: runs of 1 to 12 points of one sample, across
    many small batches, each batch stored run by run or point by point depending on the runs."""
    ctx = _open(tmp_path / ".contexta", max_batch_size=64)
    turns = random.Random(7)
    captured: dict[str, list[tuple[int, float]]] = {}
    with ctx.run("r") as run, run.stage("eval") as stage:
        samples = [stage.sample(f"case-{number}") for number in range(5)]
        for _ in range(400):
            sample, key = turns.choice(samples), turns.choice(["latency", "tokens"])
            points = captured.setdefault(f"{sample.ref} {key}", [])
            for _ in range(turns.choice([1, 1, 2, 3, 5, 12])):
                value = turns.random()
                sample.metric(key, value, step=len(points))
                points.append((len(points), value))
        for sample in samples:
            sample.close()
    for key in ("latency", "tokens"):
        by_sample: dict[str, list[tuple[int, float]]] = {}
        for point in ctx.get_metric_series("r", key).points:
            by_sample.setdefault(f"{point.sample_id} {key}", []).append((point.step, point.value))
        assert by_sample == {name: points for name, points in captured.items() if name.endswith(key)}
    ctx.close()
    with sqlite3.connect(tmp_path / ".contexta" / "metadata" / "contexta.db") as connection:
        counts = dict(
            connection.execute("SELECT sample_ref || ' ' || key, point_count FROM metric_series").fetchall()
        )
    assert counts == {name: len(points) for name, points in captured.items()}


@pytest.mark.sqlite_only("reads the SQLite file's rows directly")
def test_running_a_name_again_in_one_contexta_stores_the_new_points_under_live_series(
    tmp_path: Path,
) -> None:
    ctx = _open(tmp_path / ".contexta")
    for attempt in range(3):
        with ctx.run("r") as run, run.stage("train") as stage:
            # New series first, so the replaced run's series ids are handed out again to other keys.
            for number in range(attempt + 1):
                stage.metric(f"warmup-{number}", float(attempt), step=0)
            ctx.flush()
            for step in range(50):
                stage.metric("loss", float(attempt), step=step)
        points = ctx.get_metric_series("r", "loss").points
        assert [(point.step, point.value) for point in points] == [
            (step, float(attempt)) for step in range(50)
        ]
        for number in range(attempt + 1):
            warmup = ctx.get_metric_series("r", f"warmup-{number}").points
            assert [point.value for point in warmup] == [float(attempt)]
    ctx.close()
    with sqlite3.connect(tmp_path / ".contexta" / "metadata" / "contexta.db") as connection:
        orphans = connection.execute(
            "SELECT count(*) FROM metric_chunks WHERE series_id NOT IN (SELECT series_id FROM metric_series)"
        ).fetchone()[0]
    assert orphans == 0


@pytest.mark.sqlite_only("reads the SQLite file's chunk rows directly")
def test_points_after_a_refused_store_batch_land_in_their_own_series(tmp_path: Path) -> None:
    """A batch the store refused is rolled back, series rows included: later points must not be filed
    under a series id that now belongs to another series (here a hand-written one)."""
    workspace = tmp_path / ".contexta"
    ctx = _open(workspace)
    database = workspace / "metadata" / "contexta.db"
    run_ref = f"run:{PROJECT}.r"
    with ctx.run("r") as run, run.stage("train") as stage:
        ctx.flush()  # the run and stage are stored
        with sqlite3.connect(database) as connection:
            connection.execute(
                "CREATE TRIGGER refuse_chunks BEFORE INSERT ON metric_chunks "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        stage.metric("loss", 1.0, step=0)
        with pytest.warns(CaptureWarning):
            ctx.flush()
        with sqlite3.connect(database) as connection:
            connection.execute("DROP TRIGGER refuse_chunks")
        written = _hand_written(run_ref, "by-hand", 7.0, step=0)
        assert ctx.record_store.append(written).ok
        stage.metric("loss", 2.0, step=1)
    assert [point.value for point in ctx.get_metric_series("r", "by-hand").points] == [7.0]
    assert [(point.step, point.value) for point in ctx.get_metric_series("r", "loss").points][-1] == (1, 2.0)
    ctx.close()


def test_a_run_resumed_after_another_contexta_ran_its_name_again_files_points_correctly(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / ".contexta"
    first, second = _open(workspace), _open(workspace)
    with first.run("r") as run, run.stage("train") as stage:
        stage.metric("loss", 1.0, step=0)
    with second.run("r") as run, run.stage("train") as stage:  # replaces the first execution
        stage.metric("accuracy", 0.5, step=0)
        stage.metric("tokens", 3.0, step=0)
    second.close()
    with first.run("r", resume=True) as run, run.stage("train") as stage:
        stage.metric("loss", 2.0, step=1)
    assert [(point.step, point.value) for point in first.get_metric_series("r", "loss").points] == [(1, 2.0)]
    assert [point.value for point in first.get_metric_series("r", "accuracy").points] == [0.5]
    assert [point.value for point in first.get_metric_series("r", "tokens").points] == [3.0]
    first.close()
