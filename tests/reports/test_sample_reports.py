"""Reports summarise metrics recorded inside samples as samples: the snapshot's Stages give their
statistics and its Samples section lists every sample with status and metrics, failed ones first;
the run, multi-run and project reports get a Sample Metrics section."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contexta import Contexta
from contexta.reports import ReportDocument, ReportTable
from evaluation_runs import CASES, FAILING, PROJECT, capture_evaluations


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contexta]:
    with capture_evaluations(tmp_path_factory.mktemp("evals") / "ws") as captured:
        yield captured


def _table(report: ReportDocument, title: str) -> ReportTable:
    table = report.section(title).table
    assert table is not None
    return table


def _row(table: ReportTable, **cells: object) -> tuple[object, ...]:
    (row,) = [
        row
        for row in table.rows
        if all(row[table.columns.index(name)] == value for name, value in cells.items())
    ]
    return row


def test_snapshot_stages_give_sample_statistics_not_the_last_sample(ctx: Contexta) -> None:
    stages = _table(ctx.build_snapshot_report("quick"), "Stages")

    evaluate = dict(zip(stages.columns, _row(stages, stage="evaluate"), strict=True))
    assert evaluate["metrics"] == "pass.rate=0.75"  # no latency.ms=209 from the last case
    assert evaluate["sample_metrics"] == (
        "latency.ms over 199 samples: mean 109.985, p50 110, p95 199.1, min 10, max 209; "
        "1 NaN/inf value left out; correct over 200 samples: share 0.75 (150 of 200)"
    )


def test_snapshot_samples_section_lists_failed_samples_first_with_metrics(ctx: Contexta) -> None:
    section = ctx.build_snapshot_report("quick").section("Samples")

    table = section.table
    assert table is not None and len(table.rows) == CASES
    assert table.columns[:6] == ("sample", "stage", "batch", "status", "ended_because", "observed_at")
    assert table.columns[6:] == ("metrics.latency.ms", "metrics.correct")
    failed = [f"case-{case:03d}" for case in FAILING]
    assert list(table.column("sample")[: len(FAILING)]) == failed
    assert table.column("status")[: len(FAILING) + 1] == ("failed",) * len(FAILING) + ("completed",)
    assert table.rows[0][4] == "exception; TimeoutError: no answer for case 7"
    assert table.rows[0][6:] == (17.0, 1.0)
    assert section.paragraphs[0].startswith("Stage evaluate: 200 samples, 4 failed; latency.ms over 199")
    assert "4 failed samples are listed first." in section.paragraphs


def test_run_report_compares_sample_statistics(ctx: Contexta) -> None:
    report = ctx.build_run_report("quick", "slow")

    assert [section.title for section in report.sections][:3] == ["Runs", "Metric Deltas", "Sample Metrics"]
    table = _table(report, "Sample Metrics")
    assert table.columns == ("stage", "metric", "statistic", "quick", "slow", "delta")
    assert _row(table, metric="latency.ms", statistic="p50") == (
        "evaluate",
        "latency.ms",
        "p50",
        110.0,
        220.0,
        110.0,
    )
    assert _row(table, metric="latency.ms", statistic="non_finite")[3:5] == (1, 1)
    assert _row(table, metric="correct", statistic="share")[3:] == (0.75, 0.5, -0.25)
    assert table.column("statistic").count("mean") == 1  # a 0/1 metric shows its share, not a mean
    assert "latency.ms" not in _table(report, "Metric Deltas").column("metric")


def test_multi_run_and_project_reports_have_sample_metrics(ctx: Contexta) -> None:
    multi = ctx.build_multi_run_report(["quick", "slow"])
    summary = ctx.build_project_summary_report(PROJECT)

    assert _row(_table(multi, "Sample Metrics"), metric="correct", statistic="share")[3:] == (0.75, 0.5)
    project = _table(summary, "Sample Metrics")
    assert project.columns == (
        "run",
        "stage",
        "metric",
        "samples",
        "mean",
        "p50",
        "p95",
        "share",
        "non_finite",
    )
    assert _row(project, run="slow", metric="latency.ms")[3] == 199
    assert _row(project, run="quick", metric="correct")[7] == 0.75


def test_reports_of_runs_without_samples_have_no_sample_metrics_section(ctx: Contexta) -> None:
    with ctx.run("plain") as run, run.stage("train") as stage:
        stage.metric("loss", 0.1)

    assert "Sample Metrics" not in [
        section.title for section in ctx.build_multi_run_report(["plain"]).sections
    ]
    assert ctx.build_snapshot_report("plain").section("Samples").paragraphs == (
        "No samples were recorded for this run.",
    )
