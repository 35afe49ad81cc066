"""Terminal tables: they fit the width they are given, and every text command fits 80 columns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contexta.cli._tables import Column, cut, cut_left, display_width, render_fields, render_table

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


def test_a_table_that_fits_is_left_as_it_is() -> None:
    lines = render_table([Column("name"), Column("value", numeric=True)], [["a", "1"], ["bb", "22"]], 80)

    assert lines == ["name  value", "----  -----", "a         1", "bb       22"]


def test_long_cells_are_cut_first_and_kept_columns_last() -> None:
    columns = [Column("ref"), Column("status", keep=True), Column("size", numeric=True)]
    rows = [["artifact:" + "x" * 100, "hash_mismatch", "1.5 MiB"]]

    lines = render_table(columns, rows, 40)

    assert all(display_width(line) <= 40 for line in lines)
    assert lines[2].endswith("…  hash_mismatch  1.5 MiB")


def test_prose_columns_wrap_instead_of_being_cut() -> None:
    summary = "Batch 'holdout' of stage 'evaluate' failed; inspect the run and rerun the batch."

    lines = render_table(
        [Column("code", keep=True), Column("summary", wrap=True)], [["failed_batch", summary]], 50
    )

    assert all(display_width(line) <= 50 for line in lines)
    assert " ".join(line[len("failed_batch  ") :].strip() for line in lines[2:]) == summary


def test_wide_characters_count_twice() -> None:
    assert display_width("학습") == 4
    assert cut("학습 실행", 5) == "학습…"
    assert cut_left("run:p.long-name", 8) == "…ng-name"
    lines = render_table([Column("name")], [["학습-실행-이름이-아주-긴-경우"]], 12)
    assert all(display_width(line) <= 12 for line in lines)


def test_fields_are_aligned_and_cut() -> None:
    lines = render_fields([("name", "baseline"), ("config", "x=" + "1" * 100)], 30)

    assert lines[0] == "  name    baseline"
    assert display_width(lines[1]) == 30
    assert lines[1].endswith("…")


@pytest.mark.parametrize(
    "command",
    [
        ["runs"],
        ["run", "show", "run:p.baseline"],
        ["run", "show", "run:p.broken"],
        ["compare", "run:p.baseline", "run:p.tuned"],
        ["diagnose", "run:p.broken"],
        ["diagnose", "run:p.unmeasured"],
        ["verify"],
        ["tail", "-n", "100"],
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("columns", [80, 60])
def test_text_output_fits_the_terminal(
    cli: CliRunner, workspace: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], columns: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))

    result = cli(*command, "--workspace", workspace)

    assert result.code == 0, result.err
    assert max(display_width(line) for line in result.out.splitlines()) <= columns
