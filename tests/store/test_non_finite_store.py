"""NaN and infinite metric values in the canonical store: points keep them (little-endian doubles),
`metric_series.last_value` keeps them as tokens (SQLite would turn a bound NaN into NULL), the series
row counts them and remembers the first one's step, and they read back as the same float from live
capture, after `repair()`, after an outbox replay, and when written by hand."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from refusing_store import StoreSwitch

from contexta import Contexta
from contexta.capture import CaptureWarning
from contexta.contract import MetricPayload, MetricRecord, RecordEnvelope
from contexta.errors import NotFoundError

VALUES = [0.5, math.nan, 0.25, math.inf, -math.inf, 0.125, math.nan]


def same_floats(left: Any, right: Any) -> bool:
    return [repr(float(value)) for value in left] == [repr(float(value)) for value in right]


def _series_rows(workspace: Path) -> dict[str, tuple[Any, ...]]:
    """key -> (point_count, last_value as stored, non_finite_count, first_non_finite_step)."""
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        rows = connection.execute(
            "SELECT key, point_count, last_value, non_finite_count, first_non_finite_step FROM metric_series"
        ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def _capture(workspace: Path) -> None:
    with (
        Contexta(workspace=workspace, config={"project_name": "p"}) as ctx,
        ctx.run("r") as run,
        run.stage("train") as stage,
    ):
        for step in range(10):
            stage.metric("finite", step / 10, step=step)
            stage.metric("late", 1.0, step=step)
        ctx.flush()  # what follows is in later batches: each updates the series rows
        stage.metric("late", math.nan, step=12)  # its first non-finite point comes in a later batch
        for step, value in enumerate(VALUES, start=10):
            stage.metric("loss", value, step=step)
        ctx.flush()
        stage.metric("loss", math.nan, step=99)  # counted, and the first step is kept
        stage.metric("unstepped", 1.0)
        stage.metric("unstepped", -math.inf)  # the first non-finite point has no step
        stage.metrics({"last.inf": math.inf}, step=3)


@pytest.mark.sqlite_only("reads the SQLite file's rows directly")
def test_series_rows_count_non_finite_points_and_keep_the_last_one_as_a_token(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    _capture(workspace)
    rows = _series_rows(workspace)
    assert rows["finite"] == (10, 0.9, 0, None)
    assert rows["late"] == (11, "NaN", 1, 12)
    assert rows["loss"] == (8, "NaN", 5, 11)
    assert rows["unstepped"] == (2, "-Infinity", 1, None)
    assert rows["last.inf"] == (1, "Infinity", 1, 3)

    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        loss = ctx.get_metric_series("r", "loss", stage="train")
        assert same_floats(loss.values, [*VALUES, math.nan])
        assert list(loss.steps) == [*range(10, 17), 99]
        assert same_floats(ctx.get_metric_series("r", "unstepped").values, [1.0, -math.inf])
        # The latest values every query reads come from last_value: the same floats.
        snapshot_values = ctx.compare_runs("r", "r").metric_deltas
        latest = {delta.metric_key: delta.left for delta in snapshot_values}
        assert math.isnan(latest["loss"])
        assert latest["unstepped"] == -math.inf
        assert latest["last.inf"] == math.inf


@pytest.mark.sqlite_only("repair rebuilds the SQLite file from the capture log")
def test_repair_rebuilds_the_same_non_finite_values_from_the_capture_log(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    _capture(workspace)
    before = _series_rows(workspace)
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        ctx.repair()
    assert _series_rows(workspace) == before
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        loss = ctx.get_metric_series("r", "loss", stage="train")
        assert same_floats(loss.values, [*VALUES, math.nan])
        assert list(loss.steps) == [*range(10, 17), 99]
        assert all(type(value) is float for value in loss.values)


@pytest.mark.sqlite_only("reads the SQLite file's rows directly")
def test_an_outbox_replay_into_the_store_keeps_non_finite_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusing_store: StoreSwitch
) -> None:
    # The store refuses the batches holding the points; they are parked as capture-log lines (with
    # tokens) and replayed through the same sink once it works again.
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        with ctx.run("r") as run, run.stage("train") as stage:
            ctx.flush()
            refusing_store.refusing = True
            for step, value in enumerate(VALUES):
                stage.metric("loss", value, step=step)
            stage.metrics({"accuracy": math.nan}, step=0)
            with pytest.warns(CaptureWarning, match="canonical-store"):
                report = ctx.flush()
            assert not report.ok
            refusing_store.refusing = False
        with pytest.raises(NotFoundError, match="no metric 'loss'"):  # none reached the store yet
            ctx.get_metric_series("r", "loss")
        replay = ctx.replay_outbox()
        assert replay.errors == () and replay.delivered_batches >= 1
        loss = ctx.get_metric_series("r", "loss", stage="train")
        assert same_floats(loss.values, VALUES)
        assert list(loss.steps) == list(range(len(VALUES)))
        assert math.isnan(ctx.get_metric_series("r", "accuracy").values[0])
    assert _series_rows(workspace)["loss"] == (7, "NaN", 4, 1)


@pytest.mark.sqlite_only("reads the SQLite file's rows directly")
def test_hand_written_records_with_non_finite_values_are_stored_and_read_back(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        with ctx.run("r"):
            pass
        records = [
            MetricRecord(
                RecordEnvelope(
                    record_ref=f"record:p.r.hand-{number}",
                    record_type="metric",
                    recorded_at="2025-01-01T00:00:01Z",
                    observed_at="2025-01-01T00:00:00Z",
                    producer_ref="tests",
                    run_ref="run:p.r",
                ),
                MetricPayload("val_loss", value, "float64", step=number),
            )
            for number, value in enumerate([0.5, math.nan, math.inf, -math.inf])
        ]
        assert ctx.record_store.append_many(records).ok
        stored = ctx.record_store.scan(run="run:p.r")
        assert same_floats([record.payload.value for record in stored], [0.5, math.nan, math.inf, -math.inf])
        assert same_floats(
            ctx.get_metric_series("r", "val_loss").values, [0.5, math.nan, math.inf, -math.inf]
        )
    assert _series_rows(tmp_path / ".contexta")["val_loss"] == (4, "-Infinity", 3, 1)
