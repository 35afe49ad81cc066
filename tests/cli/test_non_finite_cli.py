"""The command line on runs with NaN and infinite metric values: `tail` shows them as nan / inf
(and its JSON keeps the log's tokens), `compare` prints a NaN delta without a sign, `best` never
picks a run whose latest value is NaN, and `diagnose` names the series."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contexta import Contexta

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


@pytest.fixture
def diverged_workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        with ctx.run("steady") as run, run.stage("evaluate") as stage:
            stage.metric("accuracy", 0.75)
        with ctx.run("diverged") as run, run.stage("evaluate") as stage:
            stage.metric("accuracy", 0.9, step=0)
            stage.metric("accuracy", math.nan, step=1)
            stage.metric("perplexity", math.inf, step=1)
            stage.metric("margin", -math.inf, step=1)
    return workspace


def test_tail_shows_nan_and_infinities(cli: CliRunner, diverged_workspace: Path) -> None:
    result = cli("tail", "--family", "record", "-n", "3", "--workspace", diverged_workspace)
    assert result.code == 0, result.err
    details = [line.split()[-2:] for line in result.out.splitlines()]
    assert details == [["accuracy=nan", "step=1"], ["perplexity=inf", "step=1"], ["margin=-inf", "step=1"]]

    as_json = cli(
        "tail", "--family", "record", "-n", "3", "--format", "json", "--workspace", diverged_workspace
    )
    lines = json.loads(as_json.out, parse_constant=lambda constant: pytest.fail(f"bare {constant} in JSON"))
    assert [line["payload"]["payload"]["value"] for line in lines] == ["NaN", "Infinity", "-Infinity"]


def test_compare_prints_a_nan_delta_without_a_sign(cli: CliRunner, diverged_workspace: Path) -> None:
    result = cli("compare", "steady", "diverged", "--workspace", diverged_workspace)
    assert result.code == 0, result.err
    (row,) = [line.split() for line in result.out.splitlines() if "accuracy" in line]
    assert row[-3:] == ["0.75", "nan", "nan"]


def test_best_and_diagnose_on_non_finite_values(cli: CliRunner, diverged_workspace: Path) -> None:
    best = cli("best", "accuracy", "--workspace", diverged_workspace)
    assert (best.code, best.out.splitlines()[0]) == (0, "run:p.steady  accuracy = 0.75")
    assert "1 of 2 runs have a value" in best.out  # the diverged run's NaN never wins
    diagnose = cli("diagnose", "diverged", "--workspace", diverged_workspace, "--format", "json")
    assert diagnose.code == 0, diagnose.err
    codes = [issue["code"] for issue in json.loads(diagnose.out)["issues"]]
    assert codes.count("non_finite_metric") == 3
