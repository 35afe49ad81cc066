"""`contexta export`: runs, metric points or samples as one tidy table in Parquet, CSV or JSON Lines."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from contexta import Contexta

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner

pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")


def test_points_of_every_run_go_to_parquet(cli: CliRunner, workspace: Path, tmp_path: Path) -> None:
    target = tmp_path / "exports" / "points.parquet"

    result = cli("export", "--table", "points", "-o", target, "--workspace", workspace)

    assert result.code == 0, result.err
    assert result.out == f"{target.resolve()}\n"
    frame = pq.read_table(target).to_pandas()
    losses = frame[(frame["run_id"] == "run:p.baseline") & (frame["metric_key"] == "train/loss")]
    assert list(losses["step"]) == [1, 2, 3]
    assert list(losses["value"]) == [0.9, 0.5, 0.3]
    assert set(losses["stage"]) == {"train"}
    accuracy = frame[frame["metric_key"] == "accuracy"].set_index("run_id")["value"].to_dict()
    assert accuracy == {
        "run:p.baseline": 0.81,
        "run:p.tuned": 0.9,
        "run:p.broken": 0.5,
        "run:q.baseline": 0.7,
    }


def test_runs_named_with_run_and_a_project_go_to_csv(cli: CliRunner, workspace: Path, tmp_path: Path) -> None:
    target = tmp_path / "runs.csv"

    result = cli(
        "export",
        "--run",
        "tuned",
        "--run",
        "broken",
        "--project",
        "p",
        "-o",
        target,
        "--workspace",
        workspace,
    )

    assert result.code == 0, result.err
    runs = pd.read_csv(target)
    assert list(runs["name"]) == ["tuned", "broken"]
    assert list(runs["status"]) == ["completed", "failed"]
    assert orjson.loads(runs["config_snapshot"][0]) == {"lr": 0.01}


def test_a_project_limits_the_runs(cli: CliRunner, workspace: Path, tmp_path: Path) -> None:
    result = cli("export", "--project", "q", "--format", "jsonl", "--workspace", workspace)

    assert result.code == 0, result.err
    assert [orjson.loads(line)["run_id"] for line in result.out.splitlines()] == ["run:q.baseline"]


def test_samples_are_one_row_per_sample_with_their_metrics_status_and_events(
    cli: CliRunner, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        with ctx.run("eval") as run, run.stage("evaluate") as stage:
            for index, name in enumerate(("a", 'b, "quoted"')):
                try:
                    with stage.sample(name) as sample:
                        sample.metric("latency.ms", 10.0 * (index + 1))
                        if index == 1:
                            raise TimeoutError("no answer")
                except TimeoutError:
                    pass
        with ctx.run("other") as run, run.stage("evaluate") as stage, stage.sample("c") as sample:
            sample.metric("correct", 1)
            sample.event("response.received", message="answer c")

    result = cli("export", "--table", "samples", "-o", tmp_path / "samples.jsonl", "--workspace", workspace)

    assert result.code == 0, result.err
    rows = [orjson.loads(line) for line in (tmp_path / "samples.jsonl").read_bytes().splitlines()]
    assert [(row["run_id"], row["name"], row["status"]) for row in rows] == [
        ("run:p.eval", "a", "completed"),
        ("run:p.eval", 'b, "quoted"', "failed"),
        ("run:p.other", "c", "completed"),
    ]
    # One column per key any run's samples recorded, empty where a sample did not record it.
    assert [(row["metrics.latency.ms"], row["metrics.correct"]) for row in rows] == [
        (10.0, None),
        (20.0, None),
        (None, 1.0),
    ]
    assert "answer c" in rows[2]["events"]
    assert all(row["observed_at"].endswith("Z") for row in rows)


def test_a_filter_chooses_the_runs_and_columns_choose_the_fields(
    cli: CliRunner, workspace: Path, tmp_path: Path
) -> None:
    target = tmp_path / "good.csv"
    result = cli(
        "export",
        "--filter",
        "metrics.accuracy >= 0.8",
        "--columns",
        "name,metrics.accuracy",
        "-o",
        target,
        "--workspace",
        workspace,
    )
    both = cli("export", "--run", "tuned", "--filter", "name = tuned", "--workspace", workspace)
    bad = cli("export", "--filter", "metrics.accuracy >=", "--workspace", workspace)

    assert result.code == 0, result.err
    runs = pd.read_csv(target)
    assert list(runs.columns) == ["name", "metrics.accuracy"]
    assert sorted(zip(runs["name"], runs["metrics.accuracy"], strict=True)) == [
        ("baseline", 0.81),
        ("tuned", 0.9),
    ]
    assert both.code == 2 and "not both" in both.err
    assert bad.code == 1 and "metrics.accuracy >=" in bad.err


def test_printed_csv_parses(cli: CliRunner, workspace: Path) -> None:
    result = cli("export", "--table", "points", "--run", "run:p.tuned", "--workspace", workspace)

    assert result.code == 0, result.err
    frame = pd.read_csv(io.StringIO(result.out))
    assert len(frame) == 5  # 3 losses, accuracy, macro.f1
    assert set(frame["run_id"]) == {"run:p.tuned"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--format", "parquet"), "give -o PATH"),
        (("-o", "points.xlsx"), "cannot tell the format"),
        (("--table", "events"), "argument --table: invalid choice"),
    ],
)
def test_usage_errors_exit_2(
    cli: CliRunner, workspace: Path, tmp_path: Path, arguments: tuple[str, ...], message: str
) -> None:
    result = cli("export", *arguments, "--workspace", workspace)

    assert result.code == 2
    assert message in result.err
    assert not (tmp_path / "points.xlsx").exists()


def test_an_unknown_run_is_one_line_and_exit_1(cli: CliRunner, workspace: Path, tmp_path: Path) -> None:
    result = cli("export", "--run", "nope", "-o", tmp_path / "x.csv", "--workspace", workspace)

    assert result.code == 1
    assert result.err.startswith("contexta: no run 'nope'")
    assert not (tmp_path / "x.csv").exists()
