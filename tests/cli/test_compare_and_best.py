"""`contexta compare A B` and `contexta best METRIC`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from contexta import Contexta
from contexta.cli._tables import display_width

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


def _row(text: str, first: str, second: str) -> list[str]:
    """The cells of the table row starting with `first` and `second`."""
    for line in text.splitlines():
        cells = line.split()
        if cells[:2] == [first, second]:
            return cells
    raise AssertionError(f"no row {first} {second} in:\n{text}")


def test_compare_shows_metric_deltas_artifact_changes_and_argument_differences(
    cli: CliRunner, workspace: Path
) -> None:
    result = cli("compare", "baseline", "tuned", "--workspace", workspace, "--project", "p")

    assert result.code == 0, result.err
    text = result.out
    assert text.startswith("From run:p.baseline (left) to run:p.tuned (right)\n")
    assert _row(text, "evaluate", "accuracy") == ["evaluate", "accuracy", "0.81", "0.9", "+0.09"]
    assert _row(text, "train", "train/loss") == ["train", "train/loss", "0.3", "0.2", "-0.1"]
    assert _row(text, "model", "changed")[:2] == ["model", "changed"]
    assert _row(text, "config_snapshot.lr", "0.1") == ["config_snapshot.lr", "0.1", "0.01"]
    assert "Environment that differs: none" in text
    assert max(display_width(line) for line in text.splitlines()) <= 80


def test_compare_json_is_the_comparison(cli: CliRunner, workspace: Path) -> None:
    result = cli("compare", "run:p.baseline", "run:p.tuned", "--workspace", workspace, "--format", "json")

    assert result.code == 0
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        expected = ctx.compare_runs("run:p.baseline", "run:p.tuned").to_dict()
    assert json.loads(result.out) == expected


def test_best_of_every_run_of_the_project(cli: CliRunner, workspace: Path) -> None:
    highest = cli("best", "accuracy", "--stage", "evaluate", "--workspace", workspace, "--project", "p")
    lowest = cli("best", "accuracy", "--lower-is-better", "--workspace", workspace, "--project", "p")

    assert (highest.code, highest.out.splitlines()) == (
        0,
        [
            "run:p.tuned  accuracy = 0.9",
            "  latest value in stage evaluate, higher is better (inferred from the key); 3 of 4 runs "
            "have a value",
        ],
    )
    assert (lowest.code, lowest.out.splitlines()[0]) == (0, "run:p.broken  accuracy = 0.5")
    assert "lower is better (as given)" in lowest.out


def test_best_of_one_named_run(cli: CliRunner, workspace: Path) -> None:
    result = cli("best", "train/loss", "run:q.baseline", "run:p.baseline", "--workspace", workspace)
    single = cli("best", "accuracy", "run:q.baseline", "--workspace", workspace, "--format", "json")

    assert result.out.splitlines()[0] == "run:p.baseline  train/loss = 0.3"
    assert "lower is better (inferred from the key)" in result.out
    assert json.loads(single.out) == {
        "run_id": "run:q.baseline",
        "metric_key": "accuracy",
        "stage_name": None,
        "value": 0.7,
        "aggregate": "latest",
        "higher_is_better": True,
        "direction": "inferred",
        "run_count": 1,
        "candidate_count": 1,
    }


def test_best_fails_when_no_run_has_the_metric(cli: CliRunner, workspace: Path) -> None:
    result = cli("best", "bleu", "--workspace", workspace)

    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("contexta: no metric 'bleu' was recorded in any of the 5 runs; ")


def test_best_in_a_stage_without_the_metric_fails(cli: CliRunner, workspace: Path) -> None:
    result = cli("best", "accuracy", "--stage", "train", "run:p.tuned", "--workspace", workspace)

    assert result.code == 1
    assert result.err == (
        "contexta: no metric 'accuracy' was recorded in a stage named 'train' of the run; "
        "it was recorded in stage 'evaluate'\n"
    )
