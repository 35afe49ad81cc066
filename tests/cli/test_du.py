"""`contexta du`: totals by kind are the sizes of the files on disk, and each column of the per-run and
per-project tables adds up to its kinds' totals (what no stored execution owns is its own row)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gc_workspace import capture_workspace, disk_bytes, file_digests

from conftest import CliRunner


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    return capture_workspace(tmp_path_factory.mktemp("du"))


def _du(cli: CliRunner, workspace: Path, *options: str) -> dict[str, Any]:
    result = cli("du", "--workspace", workspace, "--format", "json", *options)
    assert result.code == 0, result.err
    report: dict[str, Any] = json.loads(result.out)
    return report


def test_totals_by_kind_are_the_files_on_disk(cli: CliRunner, captured: tuple[Path, Any]) -> None:
    workspace, _ = captured
    report = _du(cli, workspace)

    assert report["total_bytes"] == sum(report["by_kind"].values()) == disk_bytes(workspace)
    assert report["by_kind"]["log_sealed_compressed"] > 0
    assert report["by_kind"]["log_active"] > 0
    assert report["by_kind"]["store"] > 0
    assert report["by_kind"]["artifacts"] == disk_bytes(workspace / "artifacts")
    assert "apportioned" in report["estimated"]["log"] and "estimated" in report["estimated"]["store"]


@pytest.mark.parametrize("by", ["run", "project"])
def test_every_column_adds_up_to_its_kinds(cli: CliRunner, captured: tuple[Path, Any], by: str) -> None:
    workspace, executions = captured
    report = _du(cli, workspace, "--by", by)
    kinds, rows = report["by_kind"], report["rows"]

    def column(part: str) -> int:
        return sum(row[part] for row in rows)

    assert column("log") == sum(size for kind, size in kinds.items() if kind.startswith("log"))
    assert column("store") == kinds["store"]
    assert column("artifacts") == kinds["artifacts"]
    assert column("outbox") == kinds["outbox"]
    assert sum(row["total"] for row in rows) == report["total_bytes"]
    named = [row for row in rows if row.get("run") != "(shared)" and row["project"] != "(shared)"]
    if by == "run":
        assert sorted(row["execution_id"] for row in named) == sorted(executions["a"] + executions["b"])
        # Each execution captured about as much as the others: its log share is not zero.
        assert all(row["log"] > 0 and row["store"] > 0 for row in named)
    else:
        assert [(row["project"], row["executions"]) for row in named] == [("gcp", 6)]


def test_du_only_reads(cli: CliRunner, captured: tuple[Path, Any]) -> None:
    workspace, _ = captured
    digests = file_digests(workspace)

    text = cli("du", "--workspace", workspace)
    by_kind = cli("du", "--workspace", workspace, "--by", "kind")

    assert text.code == by_kind.code == 0
    assert "log_sealed_compressed" in text.out and "(shared)" in text.out
    assert "apportioned" in text.out
    assert "(shared)" not in by_kind.out
    assert file_digests(workspace) == digests
