"""`get_sample_table`: every sample of a run with its status, why it ended, its metrics and its event
messages, so a failed evaluation case is seen with its values; column by column for Arrow/pandas."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.errors import NotFoundError
from contexta.query import SampleTable, get_sample_table
from evaluation_runs import CASES, FAILING, PROJECT, capture_evaluations
from store_backends import open_test_store


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contexta]:
    with capture_evaluations(tmp_path_factory.mktemp("evals") / "ws") as captured:
        yield captured


@pytest.fixture(scope="module")
def table(ctx: Contexta) -> SampleTable:
    return ctx.get_sample_table("quick")


def test_every_sample_has_a_row_with_its_status_metrics_and_events(table: SampleTable) -> None:
    assert (table.run_id, table.stage_name, len(table), table.failed_count) == (
        f"run:{PROJECT}.quick",
        None,
        CASES,
        len(FAILING),
    )
    assert table.metric_keys == ("latency.ms", "correct")
    first, failed = table.rows[0], table.rows[7]
    assert (first.name, first.stage_name, first.batch_name, first.status) == (
        "case-000",
        "evaluate",
        None,
        "completed",
    )
    assert first.metrics == {"latency.ms": 10.0, "correct": 0.0}
    assert first.events == ["answer 0"]
    assert (failed.name, failed.status, failed.end_reason, failed.failed) == (
        "case-007",
        "failed",
        "exception",
        True,
    )
    assert failed.metrics == {"latency.ms": 17.0, "correct": 1.0}  # recorded before it raised
    assert failed.events == ["answer 7", "TimeoutError: no answer for case 7"]
    assert math.isnan(table.rows[3].metrics["latency.ms"])


def test_failed_only_keeps_the_failed_samples(ctx: Contexta) -> None:
    failed = ctx.get_sample_table("quick", "evaluate", failed_only=True)

    assert [row.name for row in failed.rows] == [f"case-{case:03d}" for case in FAILING]
    assert (failed.failed_only, failed.stage_name) == (True, "evaluate")
    assert {row.status for row in failed.rows} == {"failed"}


def test_table_columns_are_ordered_columns_one_value_per_sample(table: SampleTable) -> None:
    columns = table.table_columns()

    assert list(columns) == [
        "run_id",
        "sample_id",
        "name",
        "stage_name",
        "batch_name",
        "status",
        "end_reason",
        "observed_at",
        "ended_at",
        "metrics.latency.ms",
        "metrics.correct",
        "events",
    ]
    assert {len(values) for values in columns.values()} == {CASES}
    assert columns["metrics.latency.ms"][:3] == [10.0, 11.0, 12.0]
    assert set(columns["run_id"]) == {table.run_id}
    assert columns["sample_id"][0] == f"sample:{PROJECT}.quick.evaluate.case-000"
    assert columns["events"][7] == ["answer 7", "TimeoutError: no answer for case 7"]


def test_sorted_by_a_metric_puts_the_slowest_first_and_nan_last(table: SampleTable) -> None:
    slowest = table.sorted_by("-metrics.latency.ms")
    fastest = table.sorted_by("metrics.latency.ms")

    assert [row.name for row in slowest.rows[:2]] == ["case-199", "case-198"]
    assert [row.name for row in fastest.rows[:2]] == ["case-000", "case-001"]
    assert slowest.rows[-1].name == fastest.rows[-1].name == "case-003"  # its NaN sorts last either way
    assert [row.name for row in table.sorted_by("-status").rows[:1]] == ["case-007"]  # failed > completed


def test_sorting_by_an_unknown_column_names_the_closest(table: SampleTable) -> None:
    with pytest.raises(NotFoundError, match=r"did you mean 'metrics\.latency\.ms'\?") as caught:
        table.sorted_by("-metric.latency.ms")
    assert caught.value.code == "sample_column_not_found"


def test_an_unknown_stage_names_the_closest(ctx: Contexta) -> None:
    with pytest.raises(NotFoundError, match=r"did you mean 'evaluate'\?") as caught:
        ctx.get_sample_table("quick", "evaluation")
    assert caught.value.code == "stage_not_found"


def test_samples_of_batches_and_several_stages(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "vision"}) as ctx:
        with ctx.run("r") as run:
            with (
                run.stage("validate") as stage,
                stage.batch("epoch-1") as batch,
                batch.sample("image-1") as sample,
            ):
                sample.metric("iou", 0.5)
            with run.stage("test") as stage, stage.sample("image-2") as sample:
                sample.metric("dice", 0.25)
        only_test = ctx.get_sample_table("r", "test")
        store_file = ctx.config.workspace.store_file
    database = open_test_store(store_file)  # the query function itself, on the store
    try:
        table = get_sample_table(database, "r")
    finally:
        database.close()

    assert [(row.name, row.stage_name, row.batch_name) for row in table.rows] == [
        ("image-1", "validate", "epoch-1"),
        ("image-2", "test", None),
    ]
    assert table.table_columns()["metrics.dice"] == [None, 0.25]
    assert [row.name for row in only_test.rows] == ["image-2"]


def test_the_table_converts_to_arrow_with_fixed_types(table: SampleTable) -> None:
    pyarrow = pytest.importorskip("pyarrow")

    arrow = table.sorted_by("-metrics.latency.ms").to_arrow()

    assert arrow.num_rows == CASES
    assert arrow.schema.field("metrics.correct").type == pyarrow.float64()
    assert arrow.schema.field("observed_at").type == pyarrow.timestamp("us", tz="UTC")
    assert arrow.column("name")[0].as_py() == "case-199"
    assert math.isnan(arrow.column("metrics.latency.ms")[CASES - 1].as_py())
