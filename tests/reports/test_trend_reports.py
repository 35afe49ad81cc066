"""The trend and alert report documents, built from trends and alert evaluations of runs captured live."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from csv_tables import csv_tables

from contexta import Contexta
from contexta.errors import ValidationError
from contexta.query import AlertRule
from contexta.reports import build_alert_report, build_trend_report

LOSSES = {"first": 0.9, "second": 0.6, "third": 0.4, "regressed": 0.8}


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    context = Contexta(workspace=tmp_path / "ws", config={"project_name": "reports"})
    for name, final in LOSSES.items():
        with context.run(name) as run:
            with run.stage("train") as stage:
                for step in range(1, 4):
                    stage.metric("loss", final * (4 - step), step=step)
            model = tmp_path / f"{name}.bin"
            model.write_bytes(b"w" * int(final * 100))
            run.register_artifact("model", str(model))
    with context.run("crashed") as run, run.stage("setup"):
        pass
    yield context
    context.close()


def test_a_metric_trend_report_has_its_table_chart_and_left_out_runs(ctx: Contexta) -> None:
    trend = ctx.get_metric_trend("loss", stage="train")
    document = build_trend_report(trend)
    assert document.title == "Metric Trend: loss in train (latest)"
    table = document.section("Trend").table
    assert table is not None
    assert table.column("run") == ("first", "second", "third", "regressed")
    assert table.column("value") == tuple(trend.values)
    assert table.column("step") == (3, 3, 3, 3)
    (chart,) = document.section("Trend").charts
    assert [y for _, y in chart.series[0].points] == pytest.approx(trend.values)
    assert "<svg" in document.to_html()
    skipped = document.section("Skipped Runs").table
    assert skipped is not None and skipped.rows == (("crashed", "run:reports.crashed", "no_metric"),)
    assert "1 run left out: they did not record the metric there." in document.to_markdown()


def test_an_artifact_size_report_lists_each_artifact(ctx: Contexta) -> None:
    document = build_trend_report(ctx.get_artifact_size_trend("model"))
    assert document.title == "Artifact Size Trend: model"
    trend_table = document.section("Trend").table
    assert trend_table is not None
    assert trend_table.column("total_size_bytes") == (90, 60, 40, 80)
    assert "artifact_refs" not in trend_table.columns  # a list per run is no table cell
    artifacts = document.section("Artifacts").table
    assert artifacts is not None and artifacts.column("size_bytes") == (90, 60, 40, 80)
    assert [row[0] for row in csv_tables(document.to_csv())["Artifacts"]] == list(LOSSES)


def test_a_stage_duration_report_titles_the_stage(ctx: Contexta) -> None:
    document = build_trend_report(ctx.get_stage_duration_trend("train"))
    assert document.title == "Stage Duration Trend: train"
    table = document.section("Trend").table
    assert table is not None and table.column("stage_status") == ("completed",) * 4


def test_an_alert_report_puts_what_fired_first(ctx: Contexta) -> None:
    with ctx.run("scored") as run:  # the one run that measured accuracy: the others have no data
        run.metric("accuracy", 0.9)
    rules = [
        AlertRule("loss", ">", 0.7, stage="train", name="loss high"),
        AlertRule("accuracy", "<", 0.5, name="accuracy low", fire_on_no_data=False),
    ]
    document = build_alert_report(ctx.evaluate_alerts(rules))
    assert document.title == "Alert Report: 2 of 12 checks fired"
    fired = document.section("Fired").table
    assert fired is not None
    assert [(row[0], row[1], row[5]) for row in fired.rows] == [
        ("loss high", "first", "fired"),
        ("loss high", "regressed", "fired"),
    ]
    summary = document.section("Summary")
    assert summary.table is not None
    assert summary.table.rows == (
        ("loss high", "latest(loss in train) > 0.7", False, 2, 2, 2),
        ("accuracy low", "latest(accuracy) < 0.5", False, 0, 1, 5),
    )
    assert "2 fired, 3 ok, 7 with no data" in summary.paragraphs[0]
    parsed = json.loads(document.to_json())
    assert parsed["title"] == document.title


def test_report_builders_refuse_what_is_not_their_input(ctx: Contexta) -> None:
    with pytest.raises(ValidationError) as caught:
        build_trend_report(ctx.list_runs())  # type: ignore[arg-type]
    assert caught.value.code == "report_input_invalid"
    with pytest.raises(ValidationError):
        build_alert_report(ctx.get_metric_trend("loss"))  # type: ignore[arg-type]
