"""Schema 3 encodes the columns of metric chunks; stores of schema 2 kept bare little-endian arrays.

A schema-2 store is made here from one captured today: every chunk's columns are written back as the
bare arrays schema 2 wrote (`array.tobytes()`, little-endian), the `encoding` column is dropped and
the version set to 2. Such a store is refused by a reader until `contexta migrate`, then reads back
every point as it was, and keeps doing so while new, encoded chunks join its series. `repair`
rebuilds the same points from the capture log, into encoded chunks.
"""

from __future__ import annotations

import math
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta, Workspace
from contexta.cli import main
from contexta.contract import MetricPayload, MetricRecord, RecordEnvelope
from contexta.errors import StoreError
from contexta.store._chunk_codec import CODEC_PER_COLUMN, read_column
from contexta.store._metric_chunks import POSITION_TYPE
from contexta.store._recovery import last_activity

pytestmark = pytest.mark.sqlite_only("stores written by earlier versions are SQLite files")

PROJECT = "p"
RUN = f"run:{PROJECT}.r"
# A workspace, and the points and records its store held as captured.
Captured = tuple[Path, dict[str, list[tuple[Any, ...]]], dict[str, list[str]]]
KEYS = ("loss", "count", "unstepped", "score", "sample.loss", "by-hand")


def _store(workspace: Path) -> Path:
    return workspace / "metadata" / "contexta.db"


def _hand_written(step: int, value: float) -> MetricRecord:
    return MetricRecord(
        envelope=RecordEnvelope(
            record_ref=f"record:{PROJECT}.r.by-hand-{step}",
            record_type="metric",
            recorded_at="2025-01-01T00:00:01Z",
            observed_at="2025-01-01T00:00:00Z",
            producer_ref="notebook",
            run_ref=RUN,
        ),
        payload=MetricPayload(metric_key="by-hand", value=value, value_type="float64", step=step),
    )


def _capture(ctx: Contexta, *, resume: bool = False, start: int = 0) -> None:
    """Series of every shape a chunk can take: noisy floats with NaN and infinities, int64 extremes,
    points without steps, steps that skip, several series (samples) interleaved in one batch, one
    point in a batch, and points written by hand."""
    with ctx.run("r", resume=resume) as run, run.stage("train") as stage:
        loss = 1.0
        for step in range(start, start + 3_000):
            loss = loss * 0.999 + (step % 7) * 1e-4
            stage.metric("loss", math.nan if step % 1_000 == 5 else loss, step=step)
            stage.metric("count", (-1) ** step * (2**63 - 1 - step), step=step * step)
            if step % 3 == 0:
                stage.metric("unstepped", -math.inf if step == 3 else step / 3)
        ctx.flush()
        stage.metric("score", 0.5, step=start)  # a batch of one point
        ctx.flush()
        for step in range(start, start + 50):
            for name in ("a", "b", "c"):
                with stage.sample(f"{name}{step}") as sample:
                    sample.metric("sample.loss", step * 0.1, step=step)
        assert ctx.record_store.append(_hand_written(start, 0.25)).ok


def _points(reader: Contexta | Workspace) -> dict[str, list[tuple[Any, ...]]]:
    """Every point of every key the run recorded: (step, value as text so NaN compares, observed at,
    where). A key it did not record is left out (asking for it is a NotFoundError)."""
    recorded = {summary.metric_key for summary in reader.get_metric_summaries(RUN)}
    return {
        key: [
            (point.step, repr(point.value), type(point.value), point.observed_at, point.sample_id)
            for point in reader.get_metric_series(RUN, key).points
        ]
        for key in KEYS
        if key in recorded
    }


def _records(ctx: Contexta) -> dict[str, list[str]]:
    """Every point as its whole record (refs and recorded_at included)."""
    return {key: [repr(record) for record in ctx.record_store.scan(run=RUN, key=key)] for key in KEYS}


def _as_schema_two(store: Path) -> None:
    """Rewrite the store as schema 2 kept it: bare little-endian arrays and no `encoding` column."""
    with sqlite3.connect(store, isolation_level=None) as connection:
        connection.execute("BEGIN")
        rows = connection.execute(
            "SELECT c.chunk_id, c.point_count, c.encoding, s.value_type, c.positions, c.observed_ns, "
            "c.point_values, c.steps FROM metric_chunks c JOIN metric_series s USING (series_id)"
        ).fetchall()
        for chunk_id, count, encoding, value_type, positions, observed, values, steps in rows:
            assert encoding == CODEC_PER_COLUMN
            value_typecode = "d" if value_type == "float64" else "q"

            def bare(typecode: str, blob: bytes | None) -> bytes | None:
                if blob is None:
                    return None
                column = read_column(CODEC_PER_COLUMN, typecode, blob, count)  # noqa: B023
                if sys.byteorder != "little":
                    column.byteswap()
                return column.tobytes()

            connection.execute(
                "UPDATE metric_chunks SET positions = ?, observed_ns = ?, point_values = ?, steps = ? "
                "WHERE chunk_id = ?",
                (
                    bare(POSITION_TYPE, positions),
                    bare("q", observed),
                    bare(value_typecode, values),
                    bare("q", steps),
                    chunk_id,
                ),
            )
        connection.execute("ALTER TABLE metric_chunks DROP COLUMN encoding")
        connection.execute("ALTER TABLE metric_chunks DROP COLUMN summary")  # schema 6's
        for column in ("tag_edits", "notes", "archived_at"):  # schema 5's
            connection.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        # Nor what schema 4 added: the series' extremes and the index by key.
        connection.execute("DROP INDEX metric_series_by_key")
        for column in ("min_value", "max_value", "extremes_known"):
            connection.execute(f"ALTER TABLE metric_series DROP COLUMN {column}")
        connection.execute("PRAGMA user_version=2")
        connection.execute("COMMIT")
        connection.execute("VACUUM")


@pytest.fixture
def schema_two_workspace(tmp_path: Path) -> Captured:
    """A workspace whose store is schema 2, with the points and records it held as captured."""
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        _capture(ctx)
        points, records = _points(ctx), _records(ctx)
    _as_schema_two(_store(workspace))
    return workspace, points, records


def test_the_stored_points_are_every_shape_a_chunk_takes(
    schema_two_workspace: Captured,
) -> None:
    _, points, _ = schema_two_workspace
    assert {key: len(series) for key, series in points.items()} == {
        "loss": 3_000,
        "count": 3_000,
        "unstepped": 1_000,
        "score": 1,
        "sample.loss": 150,
        "by-hand": 1,
    }
    assert points["loss"][5][1] == "nan" and points["unstepped"][1][1] == "-inf"
    assert {point[1] for point in points["count"][:2]} == {str(2**63 - 1), str(-(2**63 - 2))}


def test_a_schema_two_store_is_refused_by_a_reader_until_migrated_then_reads_every_point(
    schema_two_workspace: Captured,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workspace, points, records = schema_two_workspace
    with pytest.raises(StoreError) as raised:
        Workspace(workspace)
    assert raised.value.code == "store_needs_migration"
    assert "store schema 2, older than" in raised.value.message and "contexta migrate" in raised.value.message

    assert main(["migrate", "--workspace", str(workspace)]) == 0
    assert "from store schema 2" in capsys.readouterr().out
    with Workspace(workspace) as opened:
        assert _points(opened) == points
    with sqlite3.connect(_store(workspace)) as connection:
        assert connection.execute("SELECT DISTINCT encoding FROM metric_chunks").fetchall() == [(None,)]
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        assert _records(ctx) == records


def test_series_of_bare_and_encoded_chunks_read_in_capture_order(
    schema_two_workspace: Captured,
) -> None:
    # Capture migrates the store; the resumed run's points land in encoded chunks of the same series.
    workspace, before, _ = schema_two_workspace
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        _capture(ctx, resume=True, start=3_000)
        after = _points(ctx)
    with sqlite3.connect(_store(workspace)) as connection:
        encodings = dict(
            connection.execute("SELECT coalesce(encoding, -1), count(*) FROM metric_chunks GROUP BY 1")
        )
    assert set(encodings) == {-1, CODEC_PER_COLUMN}
    for key, points in before.items():
        assert after[key][: len(points)] == points
        assert len(after[key]) == 2 * len(points)
    assert [point[0] for point in after["loss"]] == list(range(6_000))


def test_the_last_activity_of_an_execution_is_read_from_bare_chunks(
    schema_two_workspace: Captured,
) -> None:
    # What closes a run left open by a killed process reads its newest point's time from its chunks.
    workspace, points, _ = schema_two_workspace
    newest = max(point[3] for key, series in points.items() if key != "by-hand" for point in series)
    Contexta(workspace=workspace, config={"project_name": PROJECT}).close()  # migrates
    with sqlite3.connect(_store(workspace)) as connection:
        (execution_id,) = connection.execute("SELECT execution_id FROM runs").fetchone()
        for table in ("stages", "batches", "samples", "operations", "records"):  # only points are left
            connection.execute(f"DELETE FROM {table}")
        assert last_activity(connection, execution_id, "2020-01-01T00:00:00Z") == newest


def test_repair_rebuilds_the_same_points_into_encoded_chunks(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        _capture(ctx)
        points = _points(ctx)
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        ctx.repair()
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        repaired = _points(ctx)
    with sqlite3.connect(_store(workspace)) as connection:
        encodings = connection.execute("SELECT DISTINCT encoding FROM metric_chunks").fetchall()
    assert encodings == [(CODEC_PER_COLUMN,)]
    # The hand-written point is not in the capture log: repair rebuilds what was captured.
    assert {key: series for key, series in repaired.items() if key != "by-hand"} == {
        key: series for key, series in points.items() if key != "by-hand"
    }


def test_an_encoded_chunk_of_a_schema_this_contexta_does_not_know_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        with ctx.run("r") as run:
            run.metric("loss", 0.5, step=0)
        with sqlite3.connect(_store(workspace)) as connection:
            connection.execute("UPDATE metric_chunks SET encoding = 7")
        with pytest.raises(ValueError, match="encoding 7"):
            ctx.get_metric_series(RUN, "loss")
