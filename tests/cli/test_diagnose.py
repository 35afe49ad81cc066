"""`contexta diagnose RUN [--fail-on warning|error]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from contexta import Contexta
from contexta.cli._tables import display_width

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


def test_diagnose_lists_issues_and_fails_on_errors(cli: CliRunner, workspace: Path) -> None:
    result = cli("diagnose", "broken", "--fail-on", "error", "--workspace", workspace, "--project", "p")

    assert result.code == 1
    header = result.out.splitlines()[1]
    assert header.split() == ["severity", "code", "subject", "summary"]
    assert [line.split()[:2] for line in result.out.splitlines() if line.startswith("error ")] == [
        ["error", "failed_run"],
        ["error", "failed_stage"],
        ["error", "failed_batch"],
    ]
    assert "Batch 'holdout' of stage 'evaluate'" in result.out
    assert "Completeness notes\n- Run run:p.broken ended failed at " in result.out
    assert max(display_width(line) for line in result.out.splitlines()) <= 80
    assert result.err == "contexta: run:p.broken has 3 issues at severity error or above (--fail-on error)\n"


def test_diagnose_of_a_clean_run_passes(cli: CliRunner, workspace: Path) -> None:
    result = cli("diagnose", "run:p.baseline", "--fail-on", "error", "--workspace", workspace)

    assert result.code == 0
    assert result.out.startswith("No issues in run:p.baseline.\n")
    assert result.err == ""


def test_fail_on_sets_the_threshold(cli: CliRunner, workspace: Path) -> None:
    on_error = cli("diagnose", "run:p.unmeasured", "--fail-on", "error", "--workspace", workspace)
    on_warning = cli("diagnose", "run:p.unmeasured", "--fail-on", "warning", "--workspace", workspace)
    without = cli("diagnose", "run:p.broken", "--workspace", workspace)

    assert "missing_terminal_metrics" in on_error.out
    assert (on_error.code, on_warning.code, without.code) == (0, 1, 0)


def test_diagnose_json_is_the_result_even_when_it_fails(cli: CliRunner, workspace: Path) -> None:
    result = cli(
        "diagnose", "run:p.broken", "--fail-on", "error", "--format", "json", "--workspace", workspace
    )

    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        expected = ctx.diagnose_run("run:p.broken").to_dict()
    assert result.code == 1
    assert json.loads(result.out) == expected
    assert result.err.count("\n") == 1
