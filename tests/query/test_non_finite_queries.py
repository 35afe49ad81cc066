"""Queries over NaN and infinite metric values: `select_best_run` never picks a run whose latest
value is not finite, comparisons show NaN deltas instead of crashing, and `diagnose_run` reports
each series that holds such values with the step of the first one."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexta import Contexta


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    contexta = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"})
    yield contexta
    contexta.close()


def _evaluate(ctx: Contexta, run_name: str, *accuracies: float) -> None:
    with ctx.run(run_name) as run, run.stage("evaluate") as stage:
        for step, accuracy in enumerate(accuracies):
            stage.metric("accuracy", accuracy, step=step)


def test_select_best_run_ignores_runs_whose_latest_value_is_not_finite(ctx: Contexta) -> None:
    _evaluate(ctx, "steady", 0.7)
    _evaluate(ctx, "diverged", 0.99, math.nan)  # was best, then NaN: never the winner
    _evaluate(ctx, "overflowed", math.inf)
    _evaluate(ctx, "sunk", -math.inf)
    runs = ["steady", "diverged", "overflowed", "sunk"]

    assert ctx.select_best_run(runs, "accuracy") == "run:p.steady"
    assert ctx.select_best_run(runs, "accuracy", higher_is_better=False) == "run:p.steady"
    assert ctx.select_best_run(runs, "accuracy", stage_name="evaluate") == "run:p.steady"
    assert ctx.select_best_run(["diverged", "overflowed", "sunk"], "accuracy") is None
    assert ctx.select_best_run(["diverged"], "accuracy") is None


def test_comparisons_show_nan_deltas_honestly(ctx: Contexta) -> None:
    _evaluate(ctx, "left", 0.5)
    with ctx.run("left", resume=True) as run:
        run.metric("loss", math.inf)
    _evaluate(ctx, "right", math.nan)
    with ctx.run("right", resume=True) as run:
        run.metric("loss", math.inf)

    deltas = {delta.metric_key: delta for delta in ctx.compare_runs("left", "right").metric_deltas}
    assert deltas["accuracy"].left == 0.5
    assert deltas["accuracy"].right is not None and math.isnan(deltas["accuracy"].right)
    assert deltas["accuracy"].delta is not None and math.isnan(deltas["accuracy"].delta)
    assert deltas["loss"].delta is not None and math.isnan(deltas["loss"].delta)  # inf - inf

    (accuracy,) = [
        metric
        for metric in ctx.compare_multiple_runs(["left", "right"]).metrics
        if metric.metric_key == "accuracy"
    ]
    left, right = accuracy.values
    assert left == 0.5 and right is not None and math.isnan(right)


def test_diagnose_reports_each_series_with_non_finite_values_and_its_first_step(ctx: Contexta) -> None:
    with ctx.run("r") as run:
        run.metric("wall.seconds", math.inf)  # no step
        with run.stage("train") as stage:
            for step in range(50):
                stage.metric("loss", math.nan if step in (41, 44, 47) else 1.0 / (step + 1), step=step)
                stage.metric("accuracy", 0.5, step=step)
            with stage.batch("epoch-3") as batch:
                batch.metric("grad.norm", -math.inf, step=7)
                with batch.sample("worst") as sample:
                    sample.metric("loss", math.nan, step=2)

    issues = [issue for issue in ctx.diagnose_run("r").issues if issue.code == "non_finite_metric"]
    assert {issue.severity for issue in issues} == {"warning"}
    by_subject = {(issue.subject_ref, issue.summary.split("'")[1]): issue for issue in issues}
    assert set(by_subject) == {
        ("run:p.r", "wall.seconds"),
        ("stage:p.r.train", "loss"),
        ("batch:p.r.train.epoch-3", "grad.norm"),
        ("sample:p.r.train.epoch-3.worst", "loss"),
    }
    assert by_subject[("stage:p.r.train", "loss")].summary == (
        "Metric 'loss' of stage 'train' has 3 non-finite values (NaN/inf), the first at step 41: "
        "check for a diverging loss or a division by zero."
    )
    assert by_subject[("run:p.r", "wall.seconds")].summary.startswith(
        "Metric 'wall.seconds' of the run has 1 non-finite value (NaN/inf): "
    )
    assert (
        "of batch 'epoch-3' of stage 'train'" in by_subject[("batch:p.r.train.epoch-3", "grad.norm")].summary
    )
    assert "the first at step 7" in by_subject[("batch:p.r.train.epoch-3", "grad.norm")].summary
    assert (
        "sample 'worst' of batch 'epoch-3'" in by_subject[("sample:p.r.train.epoch-3.worst", "loss")].summary
    )


def test_a_run_without_non_finite_values_has_no_such_issue(ctx: Contexta) -> None:
    _evaluate(ctx, "clean", 0.5, 0.6)
    assert [issue for issue in ctx.diagnose_run("clean").issues if issue.code == "non_finite_metric"] == []
