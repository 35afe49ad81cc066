"""The store's side of run changes: a store from before them (schema 3) migrates and reads its runs
as never changed, and the run journal beside the store keeps every change in order, skipping a line
torn by a kill mid-append."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.store import journal_path, read_journal
from contexta.store._schema import SCHEMA_VERSION


def _capture(workspace: Path) -> None:
    with (
        Contexta(workspace=workspace, config={"project_name": "p"}) as ctx,
        ctx.run("baseline", tags={"team": "vision"}) as run,
        run.stage("train") as stage,
    ):
        stage.metric("loss", 0.5)


@pytest.mark.sqlite_only("migrates a SQLite file of an earlier schema")
def test_a_store_from_before_run_changes_migrates_and_its_runs_can_then_be_changed(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    _capture(workspace)
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        for column in ("tag_edits", "notes", "archived_at"):
            connection.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        connection.execute("DROP INDEX metric_series_by_key")  # and what schema 4 added
        for column in ("min_value", "max_value", "extremes_known"):
            connection.execute(f"ALTER TABLE metric_series DROP COLUMN {column}")
        connection.execute("ALTER TABLE metric_chunks DROP COLUMN summary")  # and schema 6's
        connection.execute("PRAGMA user_version=3")

    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        (run,) = ctx.list_runs()
        assert (run.tags, run.archived, run.notes) == ({"team": "vision"}, False, ())
        assert ctx.tag_run("baseline", owner="ana").tags == {"team": "vision", "owner": "ana"}
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.sqlite_only("the journal is kept beside the SQLite file")
def test_the_journal_keeps_changes_in_order_and_skips_a_torn_line(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    _capture(workspace)
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        ctx.tag_run("baseline", owner="ana")
        ctx.add_run_note("baseline", "looked at it")
        journal = journal_path(ctx.workspace / "metadata" / "contexta.db")
        with journal.open("ab") as torn:
            torn.write(b'{"at": "2026-01-01T00:00:00Z", "action": "archive", "run_')
        ctx.archive_run("baseline")

    changes = list(read_journal(journal))

    assert [change.action for change in changes] == ["tag", "note", "archive"]
    assert changes[0].tags == {"owner": "ana"} and changes[1].text == "looked at it"
    assert changes[0].run_ref == "run:p.baseline" and len(changes[2].executions) == 1
