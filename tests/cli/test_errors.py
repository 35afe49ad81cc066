"""Exit codes: 1 with one line on stderr for what a user can fix, 2 for usage, never a traceback; and a
workspace that is not there is not created by looking at it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contexta import __version__

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner

COMMANDS = [
    ["runs"],
    ["run", "show", "baseline"],
    ["compare", "baseline", "tuned"],
    ["best", "accuracy"],
    ["diagnose", "baseline"],
    ["report", "baseline"],
    ["verify"],
    ["tail"],
]


def _one_line_error(err: str) -> str:
    assert err.startswith("contexta: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    return err


def test_an_unknown_run_is_one_line(cli: CliRunner, workspace: Path) -> None:
    result = cli("run", "show", "nonexistent", "--workspace", workspace)

    assert result.code == 1
    assert result.out == ""
    assert _one_line_error(result.err).startswith("contexta: no run 'nonexistent' in this store")


def test_a_bare_name_in_two_projects_needs_the_project(cli: CliRunner, workspace: Path) -> None:
    ambiguous = cli("diagnose", "baseline", "--workspace", workspace)
    settled = cli("diagnose", "baseline", "--project", "q", "--workspace", workspace)

    assert ambiguous.code == 1
    assert "run:p.baseline, run:q.baseline" in _one_line_error(ambiguous.err)
    assert (settled.code, settled.out.splitlines()[0]) == (0, "No issues in run:q.baseline.")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_a_missing_workspace_is_reported_and_not_created(
    cli: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "nowhere" / ".contexta"

    result = cli(*command, "--workspace", missing)

    assert result.code == 1
    assert result.out == ""
    assert _one_line_error(result.err).startswith(f"contexta: no workspace at {missing}")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    "command", [command for command in COMMANDS if command != ["tail"]], ids=lambda c: c[0]
)
def test_a_workspace_without_a_store_says_how_to_make_one(
    cli: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    empty = tmp_path / ".contexta"
    empty.mkdir()

    result = cli(*command, "--workspace", empty)

    assert result.code == 1
    message = _one_line_error(result.err)
    assert "no Contexta store in" in message
    assert "capture a run into it first" in message
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["runs", "--bogus"],
        ["runs", "--limit", "0"],
        ["runs", "--status", "sleeping"],
        ["run"],
        ["compare", "only-one"],
        ["diagnose", "baseline", "--fail-on", "fatal"],
        ["report", "baseline", "--format", "pdf"],
        ["tail", "--family", "metrics"],
        ["tail", "--lines", "-1"],
        ["runs", "--format", "yaml"],
    ],
)
def test_bad_flags_are_usage_errors(cli: CliRunner, workspace: Path, arguments: list[str]) -> None:
    result = cli(*arguments, "--workspace", workspace) if arguments else cli()

    assert result.code == 2
    assert result.out == ""
    assert "usage: contexta" in result.err


def test_help_and_version_exit_zero(cli: CliRunner) -> None:
    assert cli("--help").code == 0
    assert cli("report", "--help").code == 0
    version = cli("--version")
    assert (version.code, version.out) == (0, f"contexta {__version__}\n")


def test_python_dash_m_contexta(workspace: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "contexta", "runs", "--workspace", str(workspace), "--project", "q"],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    unknown = subprocess.run(
        [sys.executable, "-m", "contexta", "run", "show", "nope", "--workspace", str(workspace)],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )

    assert listed.returncode == 0, listed.stderr
    assert "baseline" in listed.stdout
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    _one_line_error(unknown.stderr)
