"""Read models as tidy tables (issue 17, item 5): a metric series, a run's metric history, runs and
samples as Arrow, pandas, polars and files, with the same types whatever the run held."""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from contexta import Contexta
from contexta.errors import MissingDependencyError, NotFoundError, ValidationError
from contexta.query import MetricPoints, MetricSeries, list_samples, runs_table, samples_table, write_csv

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
pq = pytest.importorskip("pyarrow.parquet")

TRICKY_STAGE = 'fit, "tuned"\nsecond line'


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    """Run `r` of project p: lr on the run, a train stage named as typed with loss over steps 0..4
    (NaN at 3, +inf at 4), a stepless int metric, and a batch with its own loss point."""
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx:
        with ctx.run("r") as run:
            run.metric("lr", 0.1)
            with run.stage(TRICKY_STAGE) as stage:
                for step, value in enumerate([0.9, 0.1 + 0.2, 1e-300, math.nan, math.inf]):
                    stage.metric("loss", value, step=step)
                stage.metric("epochs", 3)
                with stage.batch("b0") as batch:
                    batch.metric("loss", -math.inf, step=5)
                with stage.sample("case, 1") as sample:
                    sample.metric("score", 0.5)
        yield ctx


def test_a_series_converts_to_arrow_with_stable_types_and_every_value_kept(ctx: Contexta) -> None:
    series = ctx.get_metric_series("r", "loss")

    table = series.to_arrow()

    assert table.schema == pa.schema(
        [
            ("run_id", pa.string()),
            ("stage", pa.string()),
            ("metric_key", pa.string()),
            ("step", pa.int64()),
            ("value", pa.float64()),
            ("observed_at", pa.timestamp("us", tz="UTC")),
            ("batch_id", pa.string()),
            ("sample_id", pa.string()),
        ]
    )
    rows = table.to_pydict()
    assert rows["run_id"] == ["run:p.r"] * 6
    assert rows["stage"] == [TRICKY_STAGE] * 6  # the name as typed, not its hashed ref
    assert rows["step"] == [0, 1, 2, 3, 4, 5]
    values = rows["value"]
    assert values[:3] == [0.9, 0.1 + 0.2, 1e-300]
    assert math.isnan(values[3]) and values[4] == math.inf and values[5] == -math.inf  # not nulls
    assert [moment.isoformat().replace("+00:00", "Z") for moment in rows["observed_at"]] == [
        point.observed_at for point in series.points
    ]
    assert rows["batch_id"][-1] == series.points[-1].batch_id and rows["batch_id"][0] is None


def test_an_empty_series_is_an_empty_table_with_the_same_columns(ctx: Contexta) -> None:
    # A key the run never recorded raises NotFoundError; an empty series is built to export it.
    table = MetricSeries("run:p.r", "never-recorded", MetricPoints()).to_arrow()

    assert table.num_rows == 0
    assert table.schema == ctx.get_metric_series("r", "loss").to_arrow().schema


def test_metric_history_holds_every_point_of_the_run_one_row_each(ctx: Contexta) -> None:
    history = ctx.metric_history("r")

    assert history.keys == ("lr", "loss", "epochs", "score")  # in the order first captured
    assert history["loss"].steps == ctx.get_metric_series("r", "loss").steps
    frame = history.to_pandas()
    assert len(frame) == history.row_count == 9
    assert str(frame["step"].dtype) == "Int64"  # missing steps stay integers, not floats
    assert str(frame["value"].dtype) == "float64"
    assert str(frame["observed_at"].dtype) == "datetime64[us, UTC]"
    lr = frame[frame["metric_key"] == "lr"].iloc[0]
    assert lr["value"] == 0.1 and pd.isna(lr["step"]) and pd.isna(lr["stage"])
    epochs = frame[frame["metric_key"] == "epochs"].iloc[0]
    assert epochs["value"] == 3.0  # an int metric is a float64 value like every other
    assert frame[frame["metric_key"] == "score"]["sample_id"].notna().all()


def test_metric_history_picks_keys_and_a_stage(ctx: Contexta) -> None:
    picked = ctx.metric_history("r", keys=["loss", "lr"], stage=TRICKY_STAGE)

    assert picked.keys == ("loss", "lr")
    assert len(picked["loss"].points) == 6 and len(picked["lr"].points) == 0  # lr is on the run
    with pytest.raises(NotFoundError) as missing:
        picked["accuracy"]
    assert missing.value.code == "metric_not_found"
    with pytest.raises(ValidationError) as bad:
        ctx.metric_history("r", keys=["loss", ""])
    assert bad.value.code == "metric_key_invalid"


def test_a_history_of_a_key_the_run_never_recorded_names_the_closest(ctx: Contexta) -> None:
    """A misspelt key gave an empty series silently (the complaint of issue 17), while
    get_metric_series raised; a key recorded elsewhere in the run is still an empty series."""
    with pytest.raises(NotFoundError, match=r"'los'.*did you mean 'loss'") as missing:
        ctx.metric_history("r", keys=["loss", "los"])
    assert missing.value.code == "metric_not_found"
    with pytest.raises(NotFoundError, match="'los'"):
        ctx.metric_history("r", keys="los", stage=TRICKY_STAGE)
    elsewhere = ctx.metric_history("r", keys=["lr"], stage=TRICKY_STAGE)
    assert [len(series.points) for series in elsewhere.series] == [0]


def test_a_history_converts_to_polars(ctx: Contexta) -> None:
    frame = ctx.metric_history("r", keys="loss").to_polars()

    assert frame.schema["step"] == pl.Int64
    assert frame.schema["observed_at"] == pl.Datetime("us", "UTC")
    assert frame["step"].to_list() == [0, 1, 2, 3, 4, 5]


def test_a_runs_table_has_one_row_per_run_and_mappings_as_json_text(ctx: Contexta, tmp_path: Path) -> None:
    with ctx.run("tagged", tags={"team": "vision, 2"}, config_snapshot={"lr": 0.01}):
        pass

    table = runs_table(ctx.list_runs()).to_arrow()

    assert table.column("name").to_pylist() == ["r", "tagged"]
    assert table.schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("execution_number").type == pa.int64()
    assert table.schema.field("latest").type == pa.bool_()
    assert table.column("tags").to_pylist() == [None, '{"team":"vision, 2"}']
    assert orjson.loads(table.column("config_snapshot")[1].as_py()) == {"lr": 0.01}


def test_a_samples_table_names_its_run(ctx: Contexta) -> None:
    frame = samples_table("run:p.r", ctx.list_samples("r")).to_pandas()

    assert list(frame["name"]) == ["case, 1"]
    assert list(frame["run_id"]) == ["run:p.r"]
    assert str(frame["observed_at"].dtype) == "datetime64[us, UTC]"


def test_csv_reads_back_with_pandas_as_the_same_values(ctx: Contexta, tmp_path: Path) -> None:
    history = ctx.metric_history("r")

    path = history.write(tmp_path / "points.csv")
    read = pd.read_csv(path)
    expected = history.to_pandas()

    assert list(read.columns) == list(expected.columns)
    assert list(read["stage"].fillna("<none>")) == list(expected["stage"].fillna("<none>"))
    assert TRICKY_STAGE in set(read["stage"])  # commas, quotes and a line break, unharmed
    assert list(read["metric_key"]) == list(expected["metric_key"])
    pd.testing.assert_series_equal(read["value"], expected["value"], check_exact=True)  # NaN, inf
    assert list(read["step"].astype("Int64")) == list(expected["step"])
    parsed = pd.to_datetime(read["observed_at"], format="ISO8601", utc=True).astype("datetime64[us, UTC]")
    pd.testing.assert_series_equal(parsed, expected["observed_at"])


def test_jsonl_writes_non_finite_values_as_the_capture_logs_tokens(ctx: Contexta, tmp_path: Path) -> None:
    path = ctx.metric_history("r", keys="loss").write(tmp_path / "loss.jsonl")

    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]

    assert [row["value"] for row in rows] == [0.9, 0.1 + 0.2, 1e-300, "NaN", "Infinity", "-Infinity"]
    assert rows[0]["stage"] == TRICKY_STAGE and rows[0]["step"] == 0
    assert rows[0]["observed_at"].endswith("Z")


def test_parquet_holds_the_arrow_table(ctx: Contexta, tmp_path: Path) -> None:
    history = ctx.metric_history("r")

    path = history.write(tmp_path / "out" / "points.parquet")

    read = pq.read_table(path)
    assert read.schema.remove_metadata() == history.to_arrow().schema
    pd.testing.assert_frame_equal(read.to_pandas(), history.to_arrow().to_pandas())  # NaN equal to NaN
    assert [entry.name for entry in path.parent.iterdir()] == ["points.parquet"]  # no partial file left


def test_a_file_whose_format_cannot_be_told_is_refused(ctx: Contexta, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        ctx.metric_history("r").write(tmp_path / "points.xlsx")

    assert refused.value.code == "export_format_invalid"
    assert not (tmp_path / "points.xlsx").exists()


def test_without_pyarrow_arrow_and_parquet_say_what_to_install_and_csv_still_works(
    ctx: Contexta, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = ctx.metric_history("r")
    for name in [name for name in sys.modules if name == "pyarrow" or name.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, name, None)  # an import of it now fails, as if not installed

    with pytest.raises(MissingDependencyError) as missing:
        history.to_arrow()
    with pytest.raises(ImportError):  # code guarding an optional import catches it too
        history.write(tmp_path / "points.parquet")

    assert missing.value.code == "dependency_missing"
    assert "pip install 'contexta[export]'" in missing.value.message and "pyarrow" in missing.value.message
    assert not (tmp_path / "points.parquet").exists()
    text = io.StringIO(newline="")
    write_csv(history, text)
    assert text.getvalue().startswith("run_id,stage,metric_key,step,value,observed_at,batch_id,sample_id\r\n")


def test_list_samples_of_a_store_feed_a_table(ctx: Contexta) -> None:
    samples = list_samples(ctx._reads(), "r")

    assert samples_table("run:p.r", samples).row_count == 1
