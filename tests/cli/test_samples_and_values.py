"""`contexta samples`, `contexta metrics`, and the values `run show`, `compare` and `best` print: a
metric recorded inside samples shows as its statistics, and `best` says what won and how it judged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contexta import Contexta
from contexta.cli._tables import display_width
from evaluation_runs import FAILING, PROJECT, capture_evaluations

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("evals") / "ws"
    capture_evaluations(path).close()
    return path


def _cells(text: str, first: str, second: str | None = None) -> list[str]:
    """The cells of the one table row starting with `first` (and `second`)."""
    rows = [line.split() for line in text.splitlines()]
    (row,) = [cells for cells in rows if cells[:1] == [first] and (second is None or cells[1:2] == [second])]
    return row


def test_samples_lists_every_sample_with_status_metrics_and_last_event(
    cli: CliRunner, workspace: Path
) -> None:
    result = cli("samples", "quick", "--workspace", workspace)

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"200 samples of run:{PROJECT}.quick, 4 failed"
    assert lines[2].split() == ["sample", "status", "latency.ms", "correct", "last", "event"]
    assert _cells(result.out, "case-000") == ["case-000", "completed", "10", "0", "answer", "0"]
    assert _cells(result.out, "case-007")[:4] == ["case-007", "failed", "17", "1"]
    assert "TimeoutError: no answer for case 7" in result.out
    assert max(display_width(line) for line in lines) <= 80


def test_samples_failed_sorted_slowest_first(cli: CliRunner, workspace: Path) -> None:
    result = cli(
        "samples",
        "slow",
        "--stage",
        "evaluate",
        "--failed",
        "--sort",
        "-metrics.latency.ms",
        "--workspace",
        workspace,
    )

    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == f"4 failed samples of run:{PROJECT}.slow in stage evaluate"
    names = [line.split()[0] for line in result.out.splitlines()[4:]]
    assert names == [f"case-{case:03d}" for case in reversed(FAILING)]


def test_samples_json_is_the_sample_table(cli: CliRunner, workspace: Path) -> None:
    result = cli("samples", "quick", "--failed", "--workspace", workspace, "--format", "json")

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        expected = ctx.get_sample_table("quick", failed_only=True).to_dict()
    shown = json.loads(result.out)
    assert shown == expected
    assert shown["rows"][0]["events"] == ["answer 7", "TimeoutError: no answer for case 7"]


def test_samples_of_an_unknown_stage_or_column_names_the_closest(cli: CliRunner, workspace: Path) -> None:
    stage = cli("samples", "quick", "--stage", "evalute", "--workspace", workspace)
    column = cli("samples", "quick", "--sort", "-latency", "--workspace", workspace)

    assert stage.code == 1 and stage.out == ""
    assert "did you mean 'evaluate'?" in stage.err
    assert column.code == 1
    assert "no sortable column 'latency'" in column.err and "metrics.latency.ms" in column.err


def test_metrics_lists_keys_per_stage_with_point_and_sample_counts(cli: CliRunner, workspace: Path) -> None:
    result = cli("metrics", "quick", "--workspace", workspace)

    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == f"Metrics of run:{PROJECT}.quick (4)"
    assert _cells(result.out, "train", "loss") == ["train", "loss", "3", "-", "0"]
    assert _cells(result.out, "evaluate", "latency.ms") == ["evaluate", "latency.ms", "0", "200", "1"]
    assert _cells(result.out, "evaluate", "pass.rate") == ["evaluate", "pass.rate", "1", "-", "0"]
    as_json = json.loads(cli("metrics", "quick", "--workspace", workspace, "--format", "json").out)
    (correct,) = [metric for metric in as_json["metrics"] if metric["metric_key"] == "correct"]
    assert correct["samples"]["share"] == 0.75


def test_run_show_lists_metrics_and_sample_statistics(cli: CliRunner, workspace: Path) -> None:
    result = cli("run", "show", "quick", "--workspace", workspace)

    assert result.code == 0, result.err
    text = result.out
    assert f"samples        200 (4 failed: contexta samples run:{PROJECT}.quick --failed)" in text
    assert "\nMetrics (2)\n" in text
    assert _cells(text, "train", "loss") == ["train", "loss", "0.4", "0.4", "0.9", "3"]
    assert "\nSample metrics (2): one value per sample\n" in text
    assert _cells(text, "evaluate", "latency.ms") == [
        "evaluate",
        "latency.ms",
        "199",
        "109.985",
        "110",
        "199.1",
        "209",
        "-",
    ]
    assert _cells(text, "evaluate", "correct")[-1] == "0.75"
    assert "evaluate/latency.ms: 1 NaN/inf value left out of the statistics" in text
    assert "Failure of sample case-007: TimeoutError: no answer for case 7" in text


def test_compare_shows_sample_statistics(cli: CliRunner, workspace: Path) -> None:
    result = cli("compare", "quick", "slow", "--workspace", workspace)

    assert result.code == 0, result.err
    rows = [line.split() for line in result.out.splitlines() if line.startswith("evaluate ")]
    assert ["evaluate", "latency.ms", "samples", "199", "199", "+0"] in rows
    assert ["evaluate", "latency.ms", "p50", "110", "220", "+110"] in rows
    assert ["evaluate", "correct", "share", "0.75", "0.5", "-0.25"] in rows
    assert not any(row[1:2] == ["latency.ms"] and len(row) == 5 for row in rows)  # no latest-sample row


def test_best_prints_the_value_and_the_direction_it_inferred(cli: CliRunner, workspace: Path) -> None:
    latency = cli("best", "latency.ms", "--workspace", workspace)
    correct = cli("best", "correct", "--stage", "evaluate", "--workspace", workspace, "--format", "json")

    assert latency.code == 0, latency.err
    assert latency.out.splitlines() == [
        f"run:{PROJECT}.quick  latency.ms = 109.985",
        "  mean over samples, lower is better (inferred from the key); 2 of 2 runs have a value",
    ]
    assert json.loads(correct.out) == {
        "run_id": f"run:{PROJECT}.quick",
        "metric_key": "correct",
        "stage_name": "evaluate",
        "value": 0.75,
        "aggregate": "mean",
        "higher_is_better": True,
        "direction": "inferred",
        "run_count": 2,
        "candidate_count": 2,
    }


def test_best_direction_and_aggregate_flags_override(cli: CliRunner, workspace: Path) -> None:
    highest = cli("best", "latency.ms", "--higher-is-better", "--aggregate", "p95", "--workspace", workspace)
    lowest = cli("best", "correct", "--lower-is-better", "--workspace", workspace)
    both = cli("best", "loss", "--higher-is-better", "--lower-is-better", "--workspace", workspace)

    assert highest.out.splitlines() == [
        f"run:{PROJECT}.slow  latency.ms = 398.2",
        "  p95 over samples, higher is better (as given); 2 of 2 runs have a value",
    ]
    assert lowest.out.splitlines()[0] == f"run:{PROJECT}.slow  correct = 0.5"
    assert both.code == 2


def test_best_of_an_unknown_key_names_the_closest(cli: CliRunner, workspace: Path) -> None:
    result = cli("best", "latency", "--workspace", workspace)

    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "contexta: no metric 'latency' was recorded in any of the 2 runs; did you mean 'latency.ms'?\n"
    )


def test_compare_of_a_named_metric_and_of_an_unknown_one(cli: CliRunner, workspace: Path) -> None:
    named = cli("compare", "quick", "slow", "--metric", "correct", "--workspace", workspace)
    unknown = cli("compare", "quick", "slow", "--metric", "corect", "--workspace", workspace)

    rows = [line.split()[:2] for line in named.out.splitlines() if line.startswith(("evaluate ", "train "))]
    assert rows == [["evaluate", "correct"], ["evaluate", "correct"]]  # its samples and share rows
    assert (unknown.code, unknown.out) == (1, "")
    assert "no metric 'corect' was recorded in either run; did you mean 'correct'?" in unknown.err
