"""Metrics recorded inside samples are counted as samples: comparisons, best-run selection and metric
summaries give their count, mean, min, max, p50, p95 (and the share of a 0/1 metric), never the value
of whichever sample ran last, and a NaN is counted apart instead of poisoning the statistics."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.errors import NotFoundError, ValidationError
from contexta.query import SampleAggregate
from evaluation_runs import PROJECT, capture_evaluations

QUICK_MEAN = (sum(range(10, 210)) - 13) / 199  # case 3 (latency 13) was NaN


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contexta]:
    with capture_evaluations(tmp_path_factory.mktemp("evals") / "ws") as captured:
        yield captured


def _aggregate(aggregates: tuple[SampleAggregate | None, ...], index: int) -> SampleAggregate:
    found = aggregates[index]
    assert found is not None
    return found


def test_compare_summarises_per_sample_metrics_instead_of_quoting_the_last_sample(ctx: Contexta) -> None:
    comparison = ctx.compare_runs("quick", "slow")

    by_key = {metric.metric_key: metric for metric in comparison.sample_metrics}
    assert list(by_key) == ["latency.ms", "correct"]
    latency = by_key["latency.ms"]
    assert latency.stage_name == "evaluate"
    assert latency.left is not None and latency.right is not None
    assert (latency.left.count, latency.left.non_finite_count) == (199, 1)
    assert latency.left.mean == pytest.approx(QUICK_MEAN)
    assert (latency.left.min, latency.left.max, latency.left.p50) == (10.0, 209.0, 110.0)
    assert latency.left.p95 == pytest.approx(199.1)
    assert latency.right.mean == pytest.approx(2 * QUICK_MEAN)
    assert latency.mean_delta == pytest.approx(QUICK_MEAN)
    assert latency.p95_delta == pytest.approx(199.1)
    correct = by_key["correct"]
    assert correct.left is not None and correct.right is not None
    assert (correct.left.count, correct.left.share, correct.right.share) == (200, 0.75, 0.5)
    assert correct.mean_delta == pytest.approx(-0.25)
    # The latest-value deltas keep the stage's own metrics only: no "latency.ms = 209" from case 199.
    assert [(delta.stage_name, delta.metric_key) for delta in comparison.metric_deltas] == [
        ("evaluate", "pass.rate"),
        ("train", "loss"),
    ]


def test_a_nan_sample_is_counted_apart_and_a_latency_metric_has_no_share(ctx: Contexta) -> None:
    (latency,) = [m for m in ctx.compare_runs("quick", "slow").sample_metrics if m.metric_key == "latency.ms"]

    assert latency.left is not None
    assert latency.left.sample_count == 200
    assert math.isfinite(latency.left.mean or math.nan)
    assert latency.left.share is None


def test_multi_run_comparison_gives_each_run_its_aggregate(ctx: Contexta) -> None:
    comparison = ctx.compare_multiple_runs(["slow", "quick"])

    (correct,) = [metric for metric in comparison.sample_metrics if metric.metric_key == "correct"]
    assert [_aggregate(correct.aggregates, index).share for index in (0, 1)] == [0.5, 0.75]
    assert all(metric.metric_key != "latency.ms" for metric in comparison.metrics)


def test_best_run_by_a_sample_metric_uses_the_mean_and_infers_the_direction(ctx: Contexta) -> None:
    latency = ctx.find_best_run(["quick", "slow"], "latency.ms")
    correct = ctx.find_best_run(["slow", "quick"], "correct", stage_name="evaluate")

    assert (latency.run_id, latency.aggregate, latency.higher_is_better, latency.direction) == (
        f"run:{PROJECT}.quick",
        "mean",
        False,
        "inferred",
    )
    assert latency.value == pytest.approx(QUICK_MEAN)
    assert (correct.run_id, correct.value, correct.higher_is_better) == (f"run:{PROJECT}.quick", 0.75, True)


def test_best_run_takes_an_aggregate_and_a_given_direction(ctx: Contexta) -> None:
    worst_p95 = ctx.find_best_run(["quick", "slow"], "latency.ms", aggregate="p95", higher_is_better=True)
    latest_loss = ctx.find_best_run(["quick", "slow"], "loss")

    assert (worst_p95.run_id, worst_p95.direction) == (f"run:{PROJECT}.slow", "given")
    assert worst_p95.value == pytest.approx(398.2)
    assert (latest_loss.aggregate, latest_loss.value, latest_loss.higher_is_better) == ("latest", 0.4, False)
    # select_best_run keeps SPEC §9's defaults (higher is better) and accepts the same aggregate.
    assert ctx.select_best_run(["quick", "slow"], "latency.ms") == f"run:{PROJECT}.slow"
    assert ctx.select_best_run(["quick", "slow"], "latency.ms", aggregate="min", higher_is_better=None) == (
        f"run:{PROJECT}.quick"
    )
    with pytest.raises(ValidationError, match="one of latest, count, mean") as caught:
        ctx.select_best_run(["quick"], "latency.ms", aggregate="average")
    assert caught.value.code == "aggregate_invalid"


def test_an_unknown_metric_key_names_the_closest_ones(ctx: Contexta) -> None:
    with pytest.raises(NotFoundError, match=r"did you mean 'latency\.ms'\?") as best:
        ctx.find_best_run(["quick", "slow"], "latency")
    with pytest.raises(NotFoundError, match=r"did you mean 'correct'\?") as series:
        ctx.get_metric_series("quick", "corect")
    with pytest.raises(NotFoundError, match="it was recorded in stage 'train'"):
        ctx.get_metric_series("quick", "loss", "evaluate")

    assert (best.value.code, series.value.code) == ("metric_not_found", "metric_not_found")
    assert best.value.details["closest"] == ["latency.ms"]
    assert ctx.select_best_run(["quick", "slow"], "latency") is None  # SPEC §9: None, not an error


def test_an_unknown_stage_names_the_closest_one(ctx: Contexta) -> None:
    with pytest.raises(NotFoundError, match=r"did you mean 'evaluate'\?") as caught:
        ctx.find_best_run(["quick", "slow"], "correct", stage_name="evaluation")
    assert caught.value.code == "stage_not_found"
    with pytest.raises(NotFoundError, match=r"did you mean 'evaluate'\?"):
        ctx.get_metric_series("quick", "correct", "evalute")


def test_metric_summaries_give_latest_min_max_count_and_sample_statistics(ctx: Contexta) -> None:
    summaries = {(s.stage_name, s.metric_key): s for s in ctx.get_metric_summaries("quick")}

    loss = summaries[("train", "loss")]
    assert (loss.latest, loss.min, loss.max, loss.point_count, loss.samples) == (0.4, 0.4, 0.9, 3, None)
    latency = summaries[("evaluate", "latency.ms")]
    assert (latency.point_count, latency.latest) == (0, None)  # nothing outside the samples
    assert latency.samples is not None and latency.samples.count == 199
    assert summaries[("evaluate", "pass.rate")].latest == 0.75


def test_sample_aggregate_statistics_of_small_sets(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "small"}) as ctx:
        with ctx.run("r") as run, run.stage("evaluate") as stage:
            for index, value in enumerate((4, 1, 3, 2)):
                with stage.sample(f"s{index}") as sample:
                    sample.metric("tokens", value)
                    sample.metric("passed", 1 if value > 1 else 0)
                    sample.metric("score", math.inf if index == 0 else math.nan)
        by_key = {metric.metric_key: metric for metric in ctx.get_metric_summaries("r")}

    tokens, passed, score = (by_key[key].samples for key in ("tokens", "passed", "score"))
    assert tokens is not None and passed is not None and score is not None
    assert (tokens.count, tokens.mean, tokens.min, tokens.max, tokens.p50) == (4, 2.5, 1, 4, 2.5)
    assert tokens.p95 == pytest.approx(3.85)
    assert (tokens.share, passed.share) == (None, 0.75)
    assert (score.count, score.non_finite_count, score.mean, score.max) == (0, 4, None, None)
    assert tokens.value("p50") == 2.5


def test_comparing_named_keys_keeps_those_and_refuses_an_unknown_one(ctx: Contexta) -> None:
    only = ctx.compare_runs("quick", "slow", metric_keys=["correct", "loss"])

    assert [delta.metric_key for delta in only.metric_deltas] == ["loss"]
    assert [metric.metric_key for metric in only.sample_metrics] == ["correct"]
    with pytest.raises(NotFoundError, match=r"did you mean 'pass\.rate'\?") as caught:
        ctx.compare_multiple_runs(["quick", "slow"], metric_keys=["pass_rate"])
    assert caught.value.code == "metric_not_found"


def test_metric_summaries_leave_non_finite_points_out_of_min_and_max(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "diverging"}) as ctx:
        with ctx.run("r") as run, run.stage("train") as stage:
            for step, loss in enumerate((0.5, math.nan, 0.25, math.inf)):
                stage.metric("loss", loss, step=step)
        (loss_summary,) = ctx.get_metric_summaries("r")

    assert (loss_summary.min, loss_summary.max, loss_summary.point_count) == (0.25, 0.5, 4)
    assert loss_summary.non_finite_count == 2
    assert loss_summary.latest == math.inf


def test_sample_values_near_the_largest_float_are_summarised_not_an_overflow(tmp_path: Path) -> None:
    """Finite per-sample values whose sum or spread is beyond the largest float: the mean and the
    percentiles are still their finite statistics (compare, reports and `run show` raised
    OverflowError: intermediate overflow in fsum)."""
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx:
        with ctx.run("r") as run, run.stage("evaluate") as stage:
            for index, value in enumerate((1e308, 1e308, -1e308, 1e308)):
                with stage.sample(f"s{index}") as sample:
                    sample.metric("energy", value)
        (summary,) = ctx.get_metric_summaries("r")
        comparison = ctx.compare_runs("r", "r")

    energy = summary.samples
    assert energy is not None
    assert (energy.count, energy.min, energy.max) == (4, -1e308, 1e308)
    assert energy.mean == pytest.approx(0.5e308)
    assert energy.p50 == pytest.approx(1e308)
    assert energy.p95 == pytest.approx(1e308)
    assert [metric.metric_key for metric in comparison.sample_metrics] == ["energy"]


def test_a_percentile_between_the_extremes_of_the_float_range_is_finite(tmp_path: Path) -> None:
    """The interpolation between two ranks whose difference is beyond the largest float (it gave inf,
    or NaN on an exact rank)."""
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx:
        with ctx.run("r") as run:
            stages = (("two", (-1.5e308, 1.5e308)), ("three", (-1.5e308, -1.5e308, 1.5e308)))
            for stage_name, values in stages:
                with run.stage(stage_name) as stage:
                    for index, value in enumerate(values):
                        with stage.sample(f"s{index}") as sample:
                            sample.metric(f"energy.{stage_name}", value)
        two, three = (summary.samples for summary in ctx.get_metric_summaries("r"))

    assert two is not None and three is not None
    assert (two.p50, two.mean) == (0.0, 0.0)
    assert two.p95 == pytest.approx(1.35e308)
    assert three.p50 == -1.5e308
    assert three.p95 == pytest.approx(1.2e308)
