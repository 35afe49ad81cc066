"""`contexta runs --filter/--tag/--sort/--columns/--limit/--offset`, and output to no terminal is never
cut to a width (piped into grep, every run and value is there in full)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contexta import Contexta

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


def _ids(out: str) -> list[str]:
    return [run["run_id"] for run in json.loads(out)]


def test_filter_keeps_the_runs_the_expression_holds_for(cli: CliRunner, workspace: Path) -> None:
    result = cli("runs", "--workspace", workspace, "--filter", "metrics.accuracy > 0.85", "--format", "json")
    failed = cli(
        "runs", "--workspace", workspace, "--filter", "status = failed or params.lr >= 1", "--format", "json"
    )

    assert result.code == 0, result.err
    assert _ids(result.out) == ["run:p.tuned"]
    assert _ids(failed.out) == ["run:p.broken"]


def test_tag_is_a_shorthand_for_a_tags_filter(cli: CliRunner, workspace: Path) -> None:
    by_value = cli("runs", "--workspace", workspace, "--tag", "team=vision", "--format", "json")
    by_presence = cli("runs", "--workspace", workspace, "--tag", "team", "--format", "json")
    no_match = cli("runs", "--workspace", workspace, "--tag", "team=nlp", "--filter", "name ~ e")

    assert _ids(by_value.out) == ["run:p.baseline", "run:p.tuned"]
    assert _ids(by_presence.out) == ["run:p.baseline", "run:p.tuned"]
    assert no_match.code == 0
    assert no_match.out.startswith("No runs matching the filter in ")


def test_sort_limit_and_offset_page_through_the_sorted_runs(cli: CliRunner, workspace: Path) -> None:
    best_first = cli("runs", "--workspace", workspace, "--sort", "-metrics.accuracy", "--format", "json")
    second = cli(
        "runs", "--workspace", workspace, "--sort", "-metrics.accuracy", "--limit", "1", "--offset", "1",
        "--format", "json",
    )  # fmt: skip

    assert _ids(best_first.out) == [
        "run:p.tuned",
        "run:p.baseline",
        "run:q.baseline",
        "run:p.broken",
        "run:p.unmeasured",  # no accuracy: last
    ]
    assert _ids(second.out) == ["run:p.baseline"]


def test_columns_show_the_fields_asked_for(
    cli: CliRunner, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    columns = "name,params.lr,metrics.evaluate:accuracy,min(metrics.train/loss),tags.team"
    text = cli("runs", "--workspace", workspace, "--project", "p", "--sort", "name", "--columns", columns)
    as_json = cli(
        "runs", "--workspace", workspace, "--project", "p", "--sort", "name", "--columns", columns,
        "--status", "completed", "--format", "json",
    )  # fmt: skip

    assert text.code == 0, text.err
    header, _, *rows = text.out.splitlines()
    assert header.split() == columns.split(",")
    assert [row.split() for row in rows] == [
        ["baseline", "0.1", "0.81", "0.3", "vision"],
        ["broken", "1", "0.5", "-", "-"],
        ["tuned", "0.01", "0.9", "0.2", "vision"],
        ["unmeasured", "-", "-", "-", "-"],
    ]
    assert json.loads(as_json.out) == [
        {
            "name": "baseline",
            "params.lr": 0.1,
            "metrics.evaluate:accuracy": 0.81,
            "min(metrics.train/loss)": 0.3,
            "tags.team": "vision",
        },
        {
            "name": "tuned",
            "params.lr": 0.01,
            "metrics.evaluate:accuracy": 0.9,
            "min(metrics.train/loss)": 0.2,
            "tags.team": "vision",
        },
        {
            "name": "unmeasured",
            "params.lr": None,
            "metrics.evaluate:accuracy": None,
            "min(metrics.train/loss)": None,
            "tags.team": None,
        },
    ]


def test_a_malformed_filter_is_shown_with_a_caret_under_the_fault(cli: CliRunner, workspace: Path) -> None:
    result = cli("runs", "--workspace", workspace, "--filter", "metrics.accuracy > 0.9 and acuracy < 3")

    assert result.code == 2
    assert result.out == ""
    first, shown, caret = result.err.splitlines()
    assert first.startswith("contexta: filter error at column 28: unknown field 'acuracy'")
    assert shown == "  metrics.accuracy > 0.9 and acuracy < 3"
    assert caret == "  " + " " * 27 + "^" * len("acuracy")


def test_malformed_sort_and_columns_are_usage_errors(cli: CliRunner, workspace: Path) -> None:
    sort = cli("runs", "--workspace", workspace, "--sort", "name,-")
    columns = cli("runs", "--workspace", workspace, "--columns", "name,metrics.")
    with_all = cli("runs", "--workspace", workspace, "--columns", "name", "--all")
    empty_tag = cli("runs", "--workspace", workspace, "--tag", "=x")

    assert (sort.code, columns.code, with_all.code, empty_tag.code) == (2, 2, 2, 2)
    assert sort.err.startswith("contexta: sort error at column 7: expected a field")
    assert columns.err.startswith("contexta: columns error at column 6")
    assert "leave out --all" in with_all.err
    assert "--tag takes NAME or NAME=VALUE" in empty_tag.err


LONG_NAME = "sweep-" + "-".join(f"lr{index:02d}" for index in range(9)) + "-final"  # 56 characters


def _add_long_run(workspace: Path) -> None:
    with (
        Contexta(workspace=workspace, config={"project_name": "p"}) as ctx,
        ctx.run(LONG_NAME, config_snapshot={"note": "x" * 120}) as run,
        run.stage("evaluate") as stage,
    ):
        stage.metric("accuracy", 0.75)


def test_output_to_no_terminal_is_never_cut(
    cli: CliRunner, fresh_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_long_run(fresh_workspace)
    monkeypatch.delenv("COLUMNS")  # captured output is no terminal, and no width was asked for

    listed = cli("runs", "--workspace", fresh_workspace)
    table = cli(
        "runs", "--workspace", fresh_workspace, "--columns", "name,params.note", "--filter", "name ~ sweep"
    )
    shown = cli("run", "show", LONG_NAME, "--workspace", fresh_workspace)

    assert listed.code == table.code == shown.code == 0
    assert LONG_NAME in listed.out and "…" not in listed.out
    assert f"{LONG_NAME}  {'x' * 120}" in table.out and "…" not in table.out
    assert LONG_NAME in shown.out


def test_an_explicit_width_still_fits_output_to_it(
    cli: CliRunner, fresh_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_long_run(fresh_workspace)
    monkeypatch.setenv("COLUMNS", "60")

    listed = cli("runs", "--workspace", fresh_workspace)

    assert max(len(line) for line in listed.out.splitlines()) <= 60
    assert "…" in listed.out


def test_the_installed_command_piped_prints_every_value_in_full(fresh_workspace: Path) -> None:
    _add_long_run(fresh_workspace)
    environment = {name: value for name, value in os.environ.items() if name != "COLUMNS"}

    search = [
        "--tag",
        "team=vision",
        "--filter",
        "not name ~ base",
        "--sort",
        "-name",
        "--columns",
        "name,tags.team",
    ]
    piped = subprocess.run(
        [sys.executable, "-m", "contexta", "runs", "--workspace", str(fresh_workspace), *search],
        capture_output=True, text=True, check=True, timeout=120, env=environment,
    )  # fmt: skip
    everything = subprocess.run(
        [sys.executable, "-m", "contexta", "runs", "--workspace", str(fresh_workspace)],
        capture_output=True, text=True, check=True, timeout=120, env=environment,
    )  # fmt: skip

    assert piped.stdout.splitlines()[2:] == ["tuned  vision"]
    assert any(line.startswith(LONG_NAME + "  ") for line in everything.stdout.splitlines())
