"""Comparison, selection, diagnosis and the comparison reports over runs captured live."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.errors import NotFoundError, ValidationError

PROJECT = "vision"


def _capture(
    ctx: Contexta, tmp_path: Path, name: str, lr: float, accuracy: float | None, content: bytes
) -> None:
    with ctx.run(
        name, dataset_ref="dataset:vision.digits", tags={"lr": lr}, config_snapshot={"opt": {"lr": lr}}
    ) as run:
        run.event("note", message="<script>alert(1)</script> & done")
        with run.stage("train") as stage:
            for step in range(20):
                stage.metric("loss", 1.0 / (step + 1) / lr, step=step)
        with run.stage("evaluate") as stage:
            if accuracy is not None:
                stage.metric("accuracy", accuracy)
            if name == "tuned":
                stage.metric("f1", 0.9)
        model = tmp_path / f"{name}.bin"
        model.write_bytes(content)
        run.register_artifact("model", str(model))


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    context = Contexta(workspace=tmp_path / ".contexta", config={"project_name": PROJECT})
    _capture(context, tmp_path, "baseline", 0.1, 0.90, b"weights-v1")
    _capture(context, tmp_path, "tuned", 0.01, 0.95, b"weights-v2")
    with context.run("broken") as run:
        with run.stage("train") as stage, pytest.raises(RuntimeError), stage.batch("epoch-0") as batch:
            batch.metric("loss", 3.0)
            raise RuntimeError("out of memory")
        with run.stage("evaluate"):
            pass  # it measured nothing
    yield context
    context.close()


def test_compare_runs_reports_metric_deltas_per_stage(ctx: Contexta) -> None:
    comparison = ctx.compare_runs("baseline", "tuned")
    assert (comparison.left_run_id, comparison.right_run_id) == (
        f"run:{PROJECT}.baseline",
        f"run:{PROJECT}.tuned",
    )
    accuracy = comparison.metric_delta("accuracy", "evaluate")
    assert accuracy is not None
    assert (accuracy.left, accuracy.right) == (0.90, 0.95)
    assert accuracy.delta == pytest.approx(0.05)
    loss = comparison.metric_delta("loss", "train")
    assert loss is not None and loss.delta == pytest.approx(1.0 / 20 / 0.01 - 1.0 / 20 / 0.1)
    f1 = comparison.metric_delta("f1")
    assert f1 is not None and (f1.left, f1.right, f1.delta) == (None, 0.9, None)  # missing from one run
    assert [delta.stage_name for delta in comparison.metric_deltas] == ["evaluate", "evaluate", "train"]


def test_compare_runs_reports_artifact_argument_and_environment_changes(ctx: Contexta) -> None:
    comparison = ctx.compare_runs("baseline", "tuned")
    (model,) = comparison.artifact_changes
    assert (model.kind, model.change) == ("model", "changed")
    assert model.left_digest != model.right_digest and model.left_size_bytes == model.right_size_bytes == 10
    assert [(d.field, d.left, d.right) for d in comparison.argument_differences] == [
        ("tags.lr", 0.1, 0.01),
        ("config_snapshot.opt.lr", 0.1, 0.01),
    ]
    assert comparison.environment_differences == ()  # both ran in this process
    same = ctx.compare_runs("baseline", "baseline")
    assert {change.change for change in same.artifact_changes} == {"unchanged"}
    assert same.argument_differences == ()
    assert comparison.to_dict()["metric_deltas"][0]["metric_key"] == "accuracy"


def test_compare_runs_with_an_unknown_run_names_it(ctx: Contexta) -> None:
    with pytest.raises(NotFoundError) as raised:
        ctx.compare_runs("baseline", "nope")
    assert "nope" in raised.value.message


def test_compare_multiple_runs_lines_up_values_and_differences(ctx: Contexta) -> None:
    comparison = ctx.compare_multiple_runs(["baseline", "tuned", "broken"])
    by_slot = {(metric.stage_name, metric.metric_key): metric.values for metric in comparison.metrics}
    assert by_slot[("evaluate", "accuracy")] == (0.90, 0.95, None)
    assert by_slot[("evaluate", "f1")] == (None, 0.9, None)
    assert by_slot[("train", "loss")][2] == 3.0  # captured in the batch before it raised
    fields = {difference.field: difference.values for difference in comparison.argument_differences}
    assert fields["tags.lr"] == (0.1, 0.01, None)
    assert fields["dataset_ref"] == ("dataset:vision.digits", "dataset:vision.digits", None)
    with pytest.raises(ValidationError):
        ctx.compare_multiple_runs("baseline")


def test_select_best_run_on_live_runs(ctx: Contexta) -> None:
    runs = ["baseline", "tuned", "broken"]
    assert ctx.select_best_run(runs, "accuracy", stage_name="evaluate") == f"run:{PROJECT}.tuned"
    assert ctx.select_best_run(runs, "accuracy", higher_is_better=False) == f"run:{PROJECT}.baseline"
    assert ctx.select_best_run(["baseline"], "accuracy") == f"run:{PROJECT}.baseline"
    assert ctx.select_best_run(runs, "f1") == f"run:{PROJECT}.tuned"  # the one run that has it
    assert ctx.select_best_run(runs, "bleu") is None


def test_diagnose_finds_the_failed_batch_and_the_silent_evaluation(ctx: Contexta) -> None:
    result = ctx.diagnose_run("broken")
    codes = {issue.code: issue for issue in result.issues}
    assert codes["failed_batch"].severity == "error"
    assert codes["failed_batch"].subject_ref == f"batch:{PROJECT}.broken.train.epoch-0"
    assert codes["missing_terminal_metrics"].severity == "warning"
    assert result.has_issues_at_least("error")
    assert not ctx.diagnose_run("tuned").has_issues_at_least("warning")


def test_run_report_puts_two_runs_side_by_side(ctx: Contexta) -> None:
    report = ctx.build_run_report("baseline", "tuned")
    assert report.title == f"Run Report: run:{PROJECT}.baseline vs run:{PROJECT}.tuned"
    assert [section.title for section in report.sections] == [
        "Runs",
        "Metric Deltas",
        "Artifacts",
        "Arguments",
        "Environment",
        "Diagnostics",
    ]
    deltas = report.section("Metric Deltas")
    assert deltas.table is not None and deltas.table.column("metric") == ("accuracy", "f1", "loss")
    (loss_chart,) = deltas.charts  # the only metric both runs recorded more than once
    assert [line.label for line in loss_chart.series] == ["baseline", "tuned"]
    assert [len(line.points) for line in loss_chart.series] == [20, 20]
    artifacts = report.section("Artifacts").table
    assert artifacts is not None and artifacts.column("change") == ("changed",)


def test_project_summary_report_covers_every_run(ctx: Contexta) -> None:
    report = ctx.build_project_summary_report()
    assert report.title == f"Project Summary: {PROJECT}"
    runs = report.section("Runs").table
    assert runs is not None and runs.column("run") == ("baseline", "tuned", "broken")
    results = report.section("Results").table
    assert results is not None
    rows = {row[1]: row for row in results.rows}
    assert rows["accuracy"][3:] == ("tuned", 0.95, "baseline", 0.9)
    assert rows["f1"][2] == 1
    diagnostics = report.section("Diagnostics").table
    assert diagnostics is not None and diagnostics.column("run") == ("broken",)
    with pytest.raises(NotFoundError):
        ctx.build_project_summary_report("no-such-project")


def test_snapshot_report_draws_each_series(ctx: Contexta) -> None:
    report = ctx.build_snapshot_report("baseline")
    (loss,) = report.section("Stages").charts
    assert loss.title == "loss in stage train" and loss.x_label == "step"
    assert [x for x, _ in loss.series[0].points] == [float(step) for step in range(20)]
    multi = ctx.build_multi_run_report(["baseline", "tuned"])
    titles = [chart.title for chart in multi.section("Metrics").charts]
    assert "accuracy (evaluate) across runs" in titles


def test_an_error_event_is_diagnosed_and_its_text_escaped_in_every_report(ctx: Contexta) -> None:
    hostile = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    with ctx.run("noisy") as run, run.stage("evaluate") as stage:
        stage.metric("accuracy", 0.5)
        stage.event("judge.crashed", message=hostile, level="error")
    (issue,) = [issue for issue in ctx.diagnose_run("noisy").issues if issue.code == "error_event"]
    assert issue.severity == "warning" and hostile in issue.summary
    assert issue.subject_ref == f"stage:{PROJECT}.noisy.evaluate"
    for report in (
        ctx.build_snapshot_report("noisy"),
        ctx.build_run_report("baseline", "noisy"),
        ctx.build_project_summary_report(),
    ):
        html = report.to_html()
        assert "<script" not in html and "<img" not in html  # the text is there, as text only
        if report.title.startswith(("Run Snapshot", "Run Report")):
            assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
