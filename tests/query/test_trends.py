"""Trends across runs over a fleet captured live (see fleet_workspace.py): a metric per run, a stage's
duration per run, an artifact kind's size per run, and the runs each trend leaves out."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fleet_workspace import GOOD_RUNS, PROJECT, Fleet, capture_fleet

from contexta import Contexta
from contexta.errors import NotFoundError, ValidationError
from contexta.query import MetricTrend, SkippedRun, get_metric_trend

TRAINED = [name for name, _ in GOOD_RUNS] + ["gd-regressed", "smoke"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return capture_fleet(tmp_path_factory.mktemp("fleet"))


@pytest.fixture
def ctx(fleet: Fleet) -> Iterator[Contexta]:
    context = Contexta(workspace=fleet.workspace, config={"project_name": PROJECT})
    yield context
    context.close()


def test_the_latest_train_loss_falls_run_after_run_until_the_regression(ctx: Contexta, fleet: Fleet) -> None:
    trend = ctx.get_metric_trend("loss", stage="train", project=PROJECT)
    assert [point.run_name for point in trend.points] == TRAINED  # oldest run first
    assert trend.values == [fleet.train_losses[name][-1] for name in TRAINED]
    assert [point.step for point in trend.points] == [len(fleet.train_losses[name]) for name in TRAINED]
    assert [point.point_count for point in trend.points] == [len(fleet.train_losses[n]) for n in TRAINED]
    good = trend.values[:5]
    assert good == sorted(good, reverse=True)  # more epochs, lower loss
    assert trend.values[5] > 100 * trend.values[4]  # the regression stands out
    assert [point.run_id for point in trend.points] == [f"run:{PROJECT}.{name}" for name in TRAINED]
    assert trend.skipped == ()


@pytest.mark.parametrize("aggregation", ["min", "max", "mean", "p50", "p95", "count"])
def test_each_aggregation_summarises_the_runs_points(ctx: Contexta, fleet: Fleet, aggregation: str) -> None:
    trend = ctx.get_metric_trend("loss", stage="train", project=PROJECT, aggregation=aggregation)
    summaries: dict[str, Callable[[list[float]], float]] = {
        "min": lambda values: float(np.min(values)),
        "max": lambda values: float(np.max(values)),
        "mean": lambda values: float(np.mean(values)),  # numpy, not the code under test
        "p50": lambda values: float(np.percentile(values, 50)),
        "p95": lambda values: float(np.percentile(values, 95)),
        "count": len,
    }
    expected = [summaries[aggregation](fleet.train_losses[name]) for name in TRAINED]
    assert trend.aggregation == aggregation
    assert trend.values == pytest.approx(expected)


def test_min_and_max_name_the_step_they_came_from(ctx: Contexta, fleet: Fleet) -> None:
    lowest = ctx.get_metric_trend("loss", stage="train", project=PROJECT, aggregation="min")
    highest = ctx.get_metric_trend("loss", stage="train", project=PROJECT, aggregation="max")
    losses = fleet.train_losses["gd-3"]
    assert lowest.points[2].step == losses.index(min(losses)) + 1  # steps are epochs, from 1
    assert highest.points[2].step == losses.index(max(losses)) + 1
    mean = ctx.get_metric_trend("loss", stage="train", project=PROJECT, aggregation="mean")
    assert {point.step for point in mean.points} == {None}  # a mean is no one point's value


def test_without_a_stage_every_stage_counts(ctx: Contexta, fleet: Fleet) -> None:
    latest = ctx.get_metric_trend("loss", project=PROJECT)
    # The holdout loss of the evaluate stage is captured after training: it is the run's latest.
    assert latest.points[0].value == fleet.holdout_loss["gd-1"]
    assert latest.points[-1].value == fleet.train_losses["smoke"][-1]  # smoke never evaluated
    count = ctx.get_metric_trend("loss", project=PROJECT, aggregation="count")
    assert count.points[0].value == len(fleet.train_losses["gd-1"]) + 1


def test_runs_without_the_metric_are_left_out_and_counted(ctx: Contexta, fleet: Fleet) -> None:
    trend = ctx.get_metric_trend("mse", stage="evaluate", project=PROJECT)
    assert [point.run_name for point in trend.points] == TRAINED[:-1]
    assert trend.values == [fleet.holdout_loss[name] for name in TRAINED[:-1]]
    assert trend.skipped == (SkippedRun(f"run:{PROJECT}.smoke", "smoke", "no_metric"),)
    assert trend.skipped_counts == {"no_metric": 1}
    # A key no run recorded there is taken for a misspelling, not answered with an empty trend.
    with pytest.raises(NotFoundError) as wrong_stage:
        ctx.get_metric_trend("mse", stage="train", project=PROJECT)
    assert "it was recorded in stage 'evaluate'" in wrong_stage.value.message
    with pytest.raises(NotFoundError) as misspelt:
        ctx.get_metric_trend("mes", project=PROJECT)
    assert misspelt.value.code == "metric_not_found" and "'mse'" in misspelt.value.message


def test_project_selects_the_runs_and_an_unknown_one_is_not_found(ctx: Contexta) -> None:
    everywhere = ctx.get_metric_trend("loss", stage="train")
    assert [point.run_name for point in everywhere.points] == [*TRAINED, "elsewhere"]
    other = ctx.get_metric_trend("loss", stage="train", project="other")
    assert [(point.run_id, point.value) for point in other.points] == [("run:other.elsewhere", 123.0)]
    with pytest.raises(NotFoundError) as caught:
        ctx.get_metric_trend("loss", project="no-such-project")
    assert caught.value.code == "project_not_found"


def test_a_filter_keeps_exactly_the_runs_it_holds_for_in_every_trend(ctx: Contexta) -> None:
    every = ctx.get_metric_trend("loss", stage="train")
    values = sorted(point.value for point in every.points)
    cut = values[len(values) // 2]  # about half the runs end below it
    kept = {point.run_id for point in every.points if point.value < cut}
    assert kept and kept != {point.run_id for point in every.points}
    expression = f"metrics.train:loss < {cut!r}"
    for trend in (
        ctx.get_metric_trend("loss", stage="train", filter=expression),
        ctx.get_stage_duration_trend("train", filter=expression),
    ):
        assert {point.run_id for point in trend.points} == kept
    with pytest.raises(ValidationError) as caught:
        ctx.get_artifact_size_trend("model", filter="metrics.loss <")
    assert caught.value.code == "filter_invalid"


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"key": "loss", "aggregation": "median"}, "aggregation_invalid"),
        ({"key": ""}, "metric_key_invalid"),
        ({"key": "loss", "stage": ""}, "name_invalid"),
    ],
)
def test_bad_arguments_say_what_to_fix(ctx: Contexta, arguments: dict[str, str], code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ctx.get_metric_trend(**arguments)
    assert caught.value.code == code


def test_table_columns_give_one_row_per_point_in_column_order(ctx: Contexta, fleet: Fleet) -> None:
    trend = ctx.get_metric_trend("loss", stage="train", project=PROJECT)
    columns = trend.table_columns()
    assert list(columns) == ["run_id", "run_name", "started_at", "value", "step", "point_count"]
    assert columns["run_name"] == TRAINED
    assert columns["value"] == trend.values
    assert all(len(values) == len(trend.points) for values in columns.values())
    empty = MetricTrend("loss", None, "latest", (), ()).table_columns()
    assert list(empty) == list(columns) and all(values == [] for values in empty.values())


def test_a_diverged_run_shows_as_nan_except_for_latest_and_count(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "nan"}) as ctx:
        with ctx.run("diverged") as run, run.stage("train") as stage:
            for step, loss in enumerate([1.0, math.nan, 0.5], start=1):
                stage.metric("loss", loss, step=step)
        db = ctx._reads()
        assert math.isnan(get_metric_trend(db, "loss", aggregation="mean").values[0])
        assert math.isnan(get_metric_trend(db, "loss", aggregation="max").values[0])
        assert get_metric_trend(db, "loss", aggregation="latest").values == [0.5]
        assert get_metric_trend(db, "loss", aggregation="count").values == [3]


def test_values_near_the_largest_float_have_a_finite_mean_and_percentiles(tmp_path: Path) -> None:
    """A series of finite values whose sum or spread is beyond the largest float: the trend's mean
    raised OverflowError (intermediate overflow in fsum) and its p50 came out inf."""
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx:
        with ctx.run("huge") as run, run.stage("train") as stage:
            for step, value in enumerate([-1.5e308, -1.5e308, 1.5e308, 1.5e308], start=1):
                stage.metric("energy", value, step=step)
        mean = ctx.get_metric_trend("energy", aggregation="mean").values
        p50 = ctx.get_metric_trend("energy", aggregation="p50").values
        p95 = ctx.get_metric_trend("energy", aggregation="p95").values
    assert (mean, p50, p95) == ([0.0], [0.0], [1.5e308])


def test_stage_durations_per_run_leave_out_runs_without_the_stage(ctx: Contexta) -> None:
    trend = ctx.get_stage_duration_trend("evaluate", project=PROJECT)
    assert [point.run_name for point in trend.points] == TRAINED[:-1]
    for point in trend.points:
        (stage,) = [stage for stage in ctx.list_stages(point.run_id) if stage.name == "evaluate"]
        assert stage.ended_at is not None
        started, ended = np.datetime64(stage.started_at[:-1]), np.datetime64(stage.ended_at[:-1])
        assert point.duration_s == pytest.approx((ended - started) / np.timedelta64(1, "s"))
        assert point.stage_status == "completed"
    assert trend.skipped == (SkippedRun(f"run:{PROJECT}.smoke", "smoke", "no_stage"),)
    assert list(trend.table_columns()) == ["run_id", "run_name", "started_at", "duration_s", "stage_status"]


def test_a_stage_still_open_is_left_out_as_open(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "live"}) as ctx:
        with ctx.run("finished") as run, run.stage("train"):
            pass
        with ctx.run("running") as run, run.stage("train"):
            trend = ctx.get_stage_duration_trend("train")
        assert [point.run_name for point in trend.points] == ["finished"]
        assert trend.skipped == (SkippedRun("run:live.running", "running", "stage_open"),)
        with pytest.raises(ValidationError) as caught:
            ctx.get_stage_duration_trend("")
        assert caught.value.code == "name_invalid"


def test_artifact_sizes_per_run_total_each_kind(ctx: Contexta, fleet: Fleet) -> None:
    checkpoints = ctx.get_artifact_size_trend("checkpoint", project=PROJECT)
    with_checkpoints = TRAINED[:-1]  # smoke trained 2 epochs: no checkpoint
    assert [point.run_name for point in checkpoints.points] == with_checkpoints
    assert checkpoints.values == [sum(fleet.checkpoint_sizes[name]) for name in with_checkpoints]
    first = checkpoints.points[0]
    assert [item.size_bytes for item in first.artifacts] == fleet.checkpoint_sizes["gd-1"]
    assert first.artifact_count == 1 and first.artifacts[0].stage_id == f"stage:{PROJECT}.gd-1.train"
    assert checkpoints.skipped == (SkippedRun(f"run:{PROJECT}.smoke", "smoke", "no_artifact"),)
    columns = checkpoints.table_columns()
    assert columns["artifact_sizes_bytes"][-1] == fleet.checkpoint_sizes["gd-regressed"]
    assert columns["artifact_count"] == [len(fleet.checkpoint_sizes[name]) for name in with_checkpoints]
    models = ctx.get_artifact_size_trend("model", project=PROJECT)
    assert models.values == [fleet.model_sizes[name] for name in TRAINED]


def test_an_artifact_without_a_file_is_listed_without_size(tmp_path: Path) -> None:
    present = tmp_path / "present.bin"
    present.write_bytes(b"12345678")
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "pending"}) as ctx:
        with ctx.run("r") as run:
            run.register_artifact("weights", str(present))
            run.register_artifact("weights", str(tmp_path / "later.bin"), allow_missing=True)
        (point,) = ctx.get_artifact_size_trend("weights").points
        assert point.total_size_bytes == 8
        assert [item.size_bytes for item in point.artifacts] == [8, None]
        with pytest.raises(ValidationError) as caught:
            ctx.get_artifact_size_trend("")
        assert caught.value.code == "artifact_kind_invalid"
