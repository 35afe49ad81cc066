"""`contexta trend` and `contexta alerts RULES_FILE` over the captured workspace (see conftest.py):
project p's baseline, tuned, broken and unmeasured runs, and project q's baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contexta import Contexta
from contexta.cli._tables import display_width

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner

RULES = """
[[rules]]
name = "accuracy dropped"
metric = "accuracy"
stage = "evaluate"
op = "<"
threshold = 0.6

[[rules]]
name = "train loss high"
metric = "train/loss"
stage = "train"
op = ">"
threshold = 0.25
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(RULES)
    return path


def test_trend_prints_a_metric_per_run_and_the_runs_left_out(cli: CliRunner, workspace: Path) -> None:
    result = cli("trend", "train/loss", "--stage", "train", "--workspace", workspace, "--project", "p")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "The latest train/loss in stage train, per run, oldest first"
    assert lines[1].split() == ["run", "started", "value", "step", "points"]
    assert [line.split()[0] for line in lines[3:5]] == ["baseline", "tuned"]
    assert [line.split()[-3:] for line in lines[3:5]] == [["0.3", "3", "3"], ["0.2", "3", "3"]]
    assert lines[5] == "2 runs left out: broken (no_metric), unmeasured (no_metric)"
    assert max(display_width(line) for line in lines) <= 80


def test_trend_json_is_the_trend(cli: CliRunner, workspace: Path) -> None:
    result = cli("trend", "accuracy", "--aggregation", "count", "--workspace", workspace, "--format", "json")

    assert result.code == 0, result.err
    trend = json.loads(result.out)
    assert (trend["metric_key"], trend["stage_name"], trend["aggregation"]) == ("accuracy", None, "count")
    assert [(point["run_id"], point["value"]) for point in trend["points"]] == [
        ("run:p.baseline", 1),
        ("run:p.tuned", 1),
        ("run:p.broken", 1),
        ("run:q.baseline", 1),  # every project without --project
    ]
    assert trend["skipped"] == [
        {"run_id": "run:p.unmeasured", "run_name": "unmeasured", "reason": "no_metric"}
    ]


def test_trend_follows_stage_durations_and_artifact_sizes(cli: CliRunner, workspace: Path) -> None:
    durations = cli("trend", "--stage-duration", "evaluate", "--workspace", workspace, "--project", "p")
    sizes = cli(
        "trend", "--artifact-size", "model", "--workspace", workspace, "--project", "p", "--format", "json"
    )

    assert durations.code == 0, durations.err
    assert durations.out.startswith("The duration of stage evaluate, per run, oldest first\n")
    rows = {line.split()[0]: line.split()[-1] for line in durations.out.splitlines()[3:]}
    assert rows == {
        "baseline": "completed",
        "tuned": "completed",
        "broken": "failed",
        "unmeasured": "completed",
    }
    assert sizes.code == 0, sizes.err
    points = json.loads(sizes.out)["points"]
    assert [(point["run_name"], point["total_size_bytes"]) for point in points] == [
        ("baseline", len(b"baseline weights")),
        ("tuned", len(b"tuned weights, better")),
    ]


@pytest.mark.parametrize(
    "arguments",
    [
        (),
        ("train/loss", "--stage-duration", "train"),
        ("--stage-duration", "train", "--stage", "train"),
        ("--artifact-size", "model", "--aggregation", "max"),
        ("train/loss", "--format", "json", "--report", "md"),
        ("train/loss", "--aggregation", "median"),
    ],
)
def test_trend_usage_errors_exit_2(cli: CliRunner, workspace: Path, arguments: tuple[str, ...]) -> None:
    result = cli("trend", *arguments, "--workspace", workspace)

    assert result.code == 2
    assert result.out == ""
    assert "usage: contexta trend" in result.err


def test_trend_writes_a_report_document(cli: CliRunner, workspace: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "accuracy.html"
    written = cli(
        "trend",
        "accuracy",
        "--stage",
        "evaluate",
        "--project",
        "p",
        "--workspace",
        workspace,
        "--output",
        target,
    )
    printed = cli("trend", "accuracy", "--project", "p", "--workspace", workspace, "--report", "md")

    assert written.code == 0, written.err
    assert written.out == f"{target.resolve()}\n"
    page = target.read_text()
    assert "<svg" in page and "Metric Trend: accuracy in evaluate (latest)" in page
    assert printed.code == 0, printed.err
    assert printed.out.startswith("# Metric Trend: accuracy (latest)\n")
    assert "| unmeasured | run:p.unmeasured | no_metric |" in printed.out


def test_trend_errors_a_user_can_fix_exit_1(cli: CliRunner, workspace: Path) -> None:
    filtered = cli("trend", "accuracy", "--filter", "metrics.accuracy >", "--workspace", workspace)
    unknown = cli("trend", "accuracy", "--project", "nope", "--workspace", workspace)

    assert (filtered.code, filtered.out) == (1, "")
    assert "column" in filtered.err and "metrics.accuracy >" in filtered.err
    assert (unknown.code, unknown.out) == (1, "")
    assert "nope" in unknown.err


def test_alerts_exit_1_when_a_rule_fires_on_the_fleet(cli: CliRunner, workspace: Path, rules: Path) -> None:
    result = cli("alerts", rules, "--workspace", workspace, "--project", "p")

    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[:4] == [
        "Rules",
        "  accuracy dropped  latest(accuracy in evaluate) < 0.6",
        "  train loss high   latest(train/loss in train) > 0.25",
        "",
    ]
    assert lines[4].split() == ["outcome", "rule", "run", "observed"]
    rows = [" ".join(line.split()) for line in lines[6:-1]]
    assert len(rows) == 8  # each rule on each run, oldest run first
    assert [row for row in rows if row.startswith("FIRED")] == [
        "FIRED train loss high baseline 0.3",
        "FIRED accuracy dropped broken 0.5",
    ]
    assert [row for row in rows if row.startswith("no data")] == [
        "no data train loss high broken -",
        "no data accuracy dropped unmeasured -",
        "no data train loss high unmeasured -",
    ]
    assert max(display_width(line) for line in lines) <= 80
    assert result.out.splitlines()[-1] == "2 rules on 4 runs: 2 fired, 3 ok, 3 no data"
    assert result.err == "contexta: alerts fired: 2 rules on 4 runs: 2 fired, 3 ok, 3 no data\n"


def test_alerts_on_one_clean_run_exit_0(cli: CliRunner, workspace: Path, rules: Path) -> None:
    result = cli("alerts", rules, "--run", "tuned", "--workspace", workspace, "--project", "p")

    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == "2 rules on 1 run: 0 fired, 2 ok, 0 no data"
    assert result.err == ""


def test_alerts_json_is_the_evaluation_and_still_fails(cli: CliRunner, workspace: Path, rules: Path) -> None:
    result = cli(
        "alerts", rules, "--run", "broken", "--workspace", workspace, "--project", "p", "--format", "json"
    )

    assert result.code == 1
    report = json.loads(result.out)
    assert report["any_fired"] is True
    assert report["outcome_counts"] == {"fired": 1, "ok": 0, "no_data": 1}
    assert [(r["rule"]["name"], r["outcome"], r["observed"]) for r in report["results"]] == [
        ("accuracy dropped", "fired", 0.5),
        ("train loss high", "no_data", None),
    ]


def test_alerts_write_a_report_and_still_fail(
    cli: CliRunner, workspace: Path, rules: Path, tmp_path: Path
) -> None:
    target = tmp_path / "alerts.md"
    result = cli("alerts", rules, "--workspace", workspace, "--project", "p", "--output", target)

    assert result.code == 1
    assert result.out == f"{target.resolve()}\n"
    document = target.read_text()
    assert document.startswith("# Alert Report: 2 of 8 checks fired\n")
    assert "| accuracy dropped | broken | run:p.broken | 0.5 | - | fired | yes |" in document


def test_a_bad_rules_file_is_named_with_its_rule_and_field(
    cli: CliRunner, workspace: Path, tmp_path: Path
) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(RULES.replace('op = "<"', 'op = "=<"'))
    result = cli("alerts", path, "--workspace", workspace)

    assert (result.code, result.out) == (1, "")
    assert result.err == (
        f"contexta: {path}: rule 1 ('accuracy dropped'), field 'op': "
        "must be one of > >= < <= == !=, got '=<'\n"
    )


def test_alerts_usage_and_selection_errors(cli: CliRunner, workspace: Path, rules: Path) -> None:
    both = cli("alerts", rules, "--run", "tuned", "--filter", "metrics.x > 1", "--workspace", workspace)
    missing = cli("alerts", workspace / "absent.toml", "--workspace", workspace)

    assert both.code == 2 and "usage: contexta alerts" in both.err
    assert (missing.code, missing.out) == (1, "")
    assert missing.err.startswith("contexta: no alert rules file at ")


def test_json_keeps_a_diverged_value_as_a_token_not_null(cli: CliRunner, tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        with ctx.run("steady") as run, run.stage("train") as stage:
            stage.metric("loss", 0.5, step=1)
        with ctx.run("diverged") as run, run.stage("train") as stage:
            stage.metric("loss", math.nan, step=1)
    rules = tmp_path / "alerts.json"
    rules.write_text(json.dumps({"rules": [{"metric": "loss", "op": ">", "threshold": 1}]}))

    trend = cli("trend", "loss", "--workspace", workspace, "--format", "json")
    alerts = cli("alerts", rules, "--workspace", workspace, "--format", "json")

    assert trend.code == 0, trend.err
    assert [point["value"] for point in json.loads(trend.out)["points"]] == [0.5, "NaN"]
    assert alerts.code == 1  # a NaN loss cannot show the run is fine
    results = json.loads(alerts.out)["results"]
    assert [(result["observed"], result["fired"]) for result in results] == [(0.5, False), ("NaN", True)]


def test_trend_and_alerts_take_only_the_runs_a_filter_keeps(
    cli: CliRunner, workspace: Path, rules: Path
) -> None:
    trend = cli(
        "trend", "train/loss", "--stage", "train", "--filter", "name = tuned", "--workspace", workspace
    )
    alerts = cli("alerts", rules, "--filter", "name = baseline", "--workspace", workspace, "--format", "json")

    assert trend.code == 0, trend.err
    assert [line.split()[0] for line in trend.out.splitlines()[3:]] == ["tuned"]
    assert {result["run_id"] for result in json.loads(alerts.out)["results"]} == {
        "run:p.baseline",
        "run:q.baseline",
    }


def test_a_misspelt_rule_fails_the_job_naming_the_closest_key(
    cli: CliRunner, workspace: Path, tmp_path: Path
) -> None:
    misspelt = tmp_path / "misspelt.toml"
    misspelt.write_text('[[rules]]\nmetric = "acuracy"\nop = "<"\nthreshold = 0.5\n')
    tolerated = tmp_path / "tolerated.toml"
    tolerated.write_text('[[rules]]\nmetric = "acuracy"\nop = "<"\nthreshold = 0.5\nfire_on_no_data = true\n')

    result = cli("alerts", misspelt, "--workspace", workspace)
    fired = cli("alerts", tolerated, "--workspace", workspace)

    assert (result.code, result.out) == (1, "")
    assert "'acuracy'" in result.err and "'accuracy'" in result.err
    assert fired.code == 1 and "no data" in fired.out  # said to fire when no run has it: it fires
