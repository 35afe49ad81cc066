"""`contexta report`: one run, two runs, several runs, or a project, in four formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contexta import Contexta

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


@pytest.mark.parametrize("document_format", ["md", "html", "json", "csv"])
def test_report_writes_each_format_to_the_output_path(
    cli: CliRunner, workspace: Path, tmp_path: Path, document_format: str
) -> None:
    target = tmp_path / "reports" / f"baseline.{document_format}"

    result = cli(
        "report", "run:p.baseline", "--format", document_format, "--output", target, "--workspace", workspace
    )

    assert result.code == 0, result.err
    assert result.out == f"{target.resolve()}\n"
    written = target.read_text(encoding="utf-8")
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        document = ctx.build_snapshot_report("run:p.baseline")
    if document_format == "md":
        assert written == document.to_markdown()
    elif document_format == "html":
        assert written.startswith("<!DOCTYPE html>")
        assert "Run Snapshot: run:p.baseline" in written
    elif document_format == "json":
        assert json.loads(written) == document.to_dict()
    else:
        rows = list(csv.reader(io.StringIO(written)))
        assert rows[0] == ["section", "row", "column", "value"]  # one tidy table, a record per cell
        summary = [row[3] for row in rows if row[0] == "Run Summary"]
        assert summary[summary.index("dataset_ref") + 1] == "dataset:p.digits"


def test_report_takes_its_format_from_the_output_suffix(
    cli: CliRunner, workspace: Path, tmp_path: Path
) -> None:
    result = cli("report", "run:p.tuned", "--output", tmp_path / "tuned.html", "--workspace", workspace)

    assert result.code == 0
    assert (tmp_path / "tuned.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_without_output_prints_markdown(cli: CliRunner, workspace: Path) -> None:
    result = cli("report", "run:p.baseline", "--workspace", workspace)

    assert result.code == 0
    assert result.out.startswith("# Run Snapshot: run:p.baseline\n")


def test_two_runs_give_the_run_report(cli: CliRunner, workspace: Path) -> None:
    result = cli(
        "report", "baseline", "tuned", "--project", "p", "--format", "json", "--workspace", workspace
    )

    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        expected = ctx.build_run_report("baseline", "tuned").to_dict()
    assert result.code == 0, result.err
    assert json.loads(result.out) == expected


def test_multi_reports_several_runs(cli: CliRunner, workspace: Path) -> None:
    result = cli(
        "report", "--multi", "run:p.baseline", "run:p.tuned", "run:q.baseline", "--workspace", workspace
    )

    assert result.code == 0
    assert result.out.startswith("# Multi Run Report: 3 runs\n")


def test_summary_reports_a_project(cli: CliRunner, workspace: Path) -> None:
    result = cli("report", "--project", "q", "--summary", "--format", "json", "--workspace", workspace)

    with Contexta(workspace=workspace, config={"project_name": "q"}) as ctx:
        expected = ctx.build_project_summary_report("q").to_dict()
    assert result.code == 0, result.err
    assert json.loads(result.out) == expected


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["run:p.baseline", "run:p.tuned", "run:p.broken"],
        ["--multi"],
        ["--summary", "--project", "p", "run:p.baseline"],
        ["--summary"],  # the workspace holds two projects: which one?
    ],
)
def test_report_arguments_that_do_not_fit_together_are_usage_errors(
    cli: CliRunner, workspace: Path, arguments: list[str]
) -> None:
    result = cli("report", *arguments, "--workspace", workspace)

    assert result.code == 2
    assert result.out == ""
    assert "contexta report: error: " in result.err


def test_usage_is_checked_before_the_workspace(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("report", "--workspace", tmp_path / "nowhere")

    assert result.code == 2
    assert not (tmp_path / "nowhere").exists()
