"""The query functions reports and the command line are built on: one run by id, its record counts,
its latest metrics, run-level series, and several questions answered from one state of the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from contexta.errors import NotFoundError, ValidationError
from contexta.query import (
    LatestMetric,
    consistent_read,
    get_latest_metrics,
    get_metric_series,
    get_record_counts,
    get_run,
    list_projects,
    list_runs,
)
from contexta.store import StoreDatabase
from store_backends import another_connection_to

if TYPE_CHECKING:
    from conftest import StoreBuilder

BASELINE = "run:vision.baseline"


def test_get_run_is_the_run_as_listed(vision_store: StoreDatabase) -> None:
    listed = {run.run_id: run for run in list_runs(vision_store)}

    assert get_run(vision_store, BASELINE) == listed[BASELINE]
    assert get_run(vision_store, "tuned") == listed["run:vision.tuned"]
    assert get_run(vision_store, "baseline", project="audio") == listed["run:audio.baseline"]
    with pytest.raises(NotFoundError) as caught:
        get_run(vision_store, "nope")
    assert caught.value.code == "run_not_found"


def test_record_counts_count_metric_points_without_reading_them(vision_store: StoreDatabase) -> None:
    assert get_record_counts(vision_store, BASELINE) == {"metric": 7, "event": 1}
    assert get_record_counts(vision_store, "broken") == {"degraded": 1}
    assert get_record_counts(vision_store, "still-open") == {}


def test_latest_metrics_per_stage_in_the_order_first_captured(vision_store: StoreDatabase) -> None:
    metrics = get_latest_metrics(vision_store, BASELINE)

    assert [(m.stage_name, m.metric_key, m.value, m.point_count) for m in metrics] == [
        ("train", "loss", 0.3, 3),
        ("evaluate", "accuracy", 0.83, 2),
        ("evaluate", "macro.f1", 0.79, 1),  # captured on the holdout batch: it counts for its stage
        (None, "wall.seconds", 3600, 1),
    ]
    assert metrics[0].stage_id == "stage:vision.baseline.train"
    assert {(m.batch_id, m.sample_id) for m in metrics} == {(None, None)}


def test_latest_metrics_per_scope_keep_the_batch(vision_store: StoreDatabase) -> None:
    metrics = get_latest_metrics(vision_store, BASELINE, per="scope")

    f1 = next(metric for metric in metrics if metric.metric_key == "macro.f1")
    assert f1 == LatestMetric(
        metric_key="macro.f1",
        value=0.79,
        point_count=1,
        stage_id="stage:vision.baseline.evaluate",
        stage_name="evaluate",
        batch_id="batch:vision.baseline.evaluate.holdout",
    )
    with pytest.raises(ValidationError) as caught:
        get_latest_metrics(vision_store, BASELINE, per="batch")  # type: ignore[arg-type]
    assert caught.value.code == "metric_grouping_invalid"


def test_run_level_series_leave_out_the_stages(store_db: StoreDatabase, store_builder: StoreBuilder) -> None:
    store_builder.project("p")
    run = store_builder.run("p", "r")
    train = store_builder.stage(run, "train", 0)
    store_builder.metric(train, "loss", 0.9, step=1, observed_at="2025-01-01T00:01:00Z")
    store_builder.metric(run, "loss", 0.5, step=1, observed_at="2025-01-01T00:02:00Z")
    store_builder.metric(train, "loss", 0.4, step=2, observed_at="2025-01-01T00:03:00Z")

    assert get_metric_series(store_db, run, "loss").values == (0.9, 0.5, 0.4)
    assert get_metric_series(store_db, run, "loss", "train").values == (0.9, 0.4)
    assert get_metric_series(store_db, run, "loss", run_level=True).values == (0.5,)
    with pytest.raises(ValidationError) as caught:
        get_metric_series(store_db, run, "loss", "train", run_level=True)
    assert caught.value.code == "metric_scope_invalid"


def test_queries_in_a_consistent_read_answer_from_one_state(
    vision_store: StoreDatabase, store_builder: StoreBuilder
) -> None:
    # Another connection to the same file commits while the block is open (a run being captured).
    writer = another_connection_to(vision_store)
    try:
        with consistent_read(vision_store):
            before = [project.name for project in list_projects(vision_store)]
            type(store_builder)(writer).project("late", created_at="2025-02-01T00:00:00Z")
            inside = [project.name for project in list_projects(vision_store)]
            with consistent_read(vision_store):  # a nested block joins the outer one
                nested = [project.name for project in list_projects(vision_store)]
        after = [project.name for project in list_projects(vision_store)]
    finally:
        writer.close_all()

    assert before == inside == nested == ["vision", "audio"]
    assert after == ["vision", "audio", "late"]
