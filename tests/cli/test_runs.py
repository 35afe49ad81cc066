"""`contexta runs` and `contexta run show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from contexta import Contexta
from contexta.cli._tables import display_width
from contexta.reports import ReportDocument, ReportTable

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


def _widest(text: str) -> int:
    return max(display_width(line) for line in text.splitlines())


def test_runs_is_a_table_of_every_run_oldest_first(cli: CliRunner, workspace: Path) -> None:
    result = cli("runs", "--workspace", workspace)

    assert result.code == 0, result.err
    header, rule, *rows = result.out.splitlines()
    assert header.split() == ["name", "status", "started", "ended", "duration", "project"]
    assert set(rule) <= {"-", " "}
    assert [row.split()[0] for row in rows] == ["baseline", "tuned", "broken", "unmeasured", "baseline"]
    assert rows[2].split()[1] == "failed"
    assert [row.split()[-1] for row in rows] == ["p", "p", "p", "p", "q"]
    assert _widest(result.out) <= 80
    assert result.err == ""


def test_runs_json_is_the_run_records(cli: CliRunner, workspace: Path) -> None:
    result = cli("runs", "--workspace", workspace, "--format", "json")

    assert result.code == 0
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        expected = [run.to_dict() for run in ctx.list_runs()]
    assert json.loads(result.out) == expected


def test_runs_filters_by_project_status_and_limit(cli: CliRunner, workspace: Path) -> None:
    failed = json.loads(cli("runs", "--workspace", workspace, "--status", "failed", "--format", "json").out)
    latest = json.loads(
        cli("runs", "--workspace", workspace, "--project", "p", "--limit", "1", "--format", "json").out
    )

    assert [run["run_id"] for run in failed] == ["run:p.broken"]
    assert [run["run_id"] for run in latest] == ["run:p.unmeasured"]


def test_options_may_come_before_the_command(cli: CliRunner, workspace: Path) -> None:
    result = cli("--workspace", workspace, "--project", "q", "runs", "--format", "json")

    assert [run["run_id"] for run in json.loads(result.out)] == ["run:q.baseline"]


def test_runs_of_a_project_without_runs_says_so(cli: CliRunner, workspace: Path) -> None:
    result = cli("runs", "--workspace", workspace, "--project", "elsewhere")

    assert result.code == 0
    assert result.out.startswith("No runs of project elsewhere in ")


def test_run_show_gives_arguments_stages_batches_deployments_artifacts(
    cli: CliRunner, workspace: Path
) -> None:
    result = cli("run", "show", "baseline", "--workspace", workspace, "--project", "p")

    assert result.code == 0, result.err
    text = result.out
    assert text.startswith("Run run:p.baseline\n")
    for expected in (
        "dataset_ref    dataset:p.digits",
        "tags           team=vision",
        "config         lr=0.1",
        "environment    Python ",
        "Stages (2)",
        "Batches (1)",
        "Deployments (1)",
        "canary",
        "Artifacts (1)",
        "Diagnostics: no issues.",
    ):
        assert expected in text
    assert _widest(text) <= 80


def _table(report: ReportDocument, title: str) -> ReportTable:
    table = report.section(title).table
    assert table is not None
    return table


def test_run_show_lays_out_the_snapshot_report(cli: CliRunner, workspace: Path) -> None:
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        report = ctx.build_snapshot_report("run:p.baseline")

    text = cli("run", "show", "run:p.baseline", "--workspace", workspace).out

    summary = dict(_table(report, "Run Summary").rows)
    assert f"records        {summary['records']}\n" in text
    assert f"execution      {summary['execution']}\n" in text
    for title in ("Stages", "Artifacts", "Batches", "Deployments"):
        assert f"\n{title} ({len(_table(report, title).rows)})\n" in text
    (evaluate,) = [row for row in _table(report, "Stages").rows if row[0] == "evaluate"]
    assert evaluate[6] == "accuracy=0.81, macro.f1=0.79"
    assert evaluate[6] in text  # the report's metrics of the stage


def test_run_show_summarises_diagnostics(cli: CliRunner, workspace: Path) -> None:
    result = cli("run", "show", "run:p.broken", "--workspace", workspace)

    words = " ".join(result.out.split())  # the line wraps at 80 columns
    # the failure events the failing scopes wrote are not counted again as error_event warnings
    assert "Diagnostics: 3 errors (failed_run, failed_stage, failed_batch);" in words
    assert words.endswith("details: contexta diagnose run:p.broken")


def test_run_show_json_counts_records_instead_of_listing_them(cli: CliRunner, workspace: Path) -> None:
    result = cli("run", "show", "run:p.baseline", "--workspace", workspace, "--format", "json")

    assert result.code == 0
    shown = json.loads(result.out)
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        snapshot = ctx.get_run_snapshot("run:p.baseline")
    assert snapshot.record_counts is not None
    assert shown["records"] == {"total": len(snapshot.records), **snapshot.record_counts}
    assert shown["records"]["metric"] == sum(
        type(record).__name__ == "MetricRecord" for record in snapshot.records
    )
    assert shown["run"] == snapshot.run.to_dict()
    assert [stage["name"] for stage in shown["stages"]] == ["train", "evaluate"]
    assert shown["environment"]["python_version"] == snapshot.environment.python_version  # type: ignore[union-attr]
    assert set(shown) == {
        "run",
        "stages",
        "batches",
        "samples",
        "deployments",
        "artifacts",
        "records",
        "completeness_notes",
        "environment",
        "record_counts",
    }
