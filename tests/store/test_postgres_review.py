"""The PostgreSQL store where it must behave as the SQLite file does: a database whose default
collation is not byte order (as most servers' en_US is), a batch the server refuses for good, and
text PostgreSQL cannot hold (NUL) in one run's params or events.

Against the session's real PostgreSQL (tests/services.py), a fresh database per test.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

import contexta
from contexta import Contexta, Workspace
from contexta.capture._sinks import _sync
from contexta.errors import StoreError
from contexta.query._live import get_field_names
from services import PostgresServer


def _contexta(workspace: Path, url: str | None) -> Contexta:
    config: dict[str, object] = {"project_name": "team"}
    if url is not None:
        config["store"] = {"url": url}
    return Contexta(workspace=workspace, config=config)


@pytest.fixture
def en_us_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new database whose default collation is English (ICU), as a server set up for en_US has."""
    name = f"contexta_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as connection:
        try:
            connection.execute(
                sql.SQL(
                    "CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                    "LOCALE 'C.UTF-8'"
                ).format(sql.Identifier(name))
            )
        except psycopg.errors.FeatureNotSupported:
            pytest.skip("this PostgreSQL was built without ICU")
    try:
        yield postgres_server.url(name)
    finally:
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as connection:
            dropped = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            connection.execute(dropped)


def _capture(workspace: Path, name: str, steps: int) -> None:
    with _contexta(workspace, None) as ctx, ctx.run(name) as run:
        for step in range(steps):
            run.metric("loss", float(step), step=step)


def test_a_grown_log_syncs_only_what_is_new_into_a_database_of_another_collation(
    en_us_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which batches a store already has is looked up as the range `sync:<id>:` .. `sync:<id>;`; under
    en_US `;` sorts before `:`, so the range was empty: every sync sent everything again, and a batch
    delivered in part was sent whole (its metric refs already stored: UniqueViolation, forever)."""
    monkeypatch.setattr(_sync, "SYNC_BATCH", 10)
    workspace = tmp_path / "laptop"
    _capture(workspace, "one", 5)
    first = contexta.sync_workspace(workspace, en_us_url)
    again = contexta.sync_workspace(workspace, en_us_url)
    assert (again.delivered_lines, again.already_there_lines) == (0, first.delivered_lines)

    _capture(workspace, "two", 3)  # the last batch of the first sync grows
    grown = contexta.sync_workspace(workspace, en_us_url)
    assert grown.already_there_lines == first.delivered_lines
    with Workspace(tmp_path / "reader", config={"store": {"url": en_us_url}}) as reader:
        steps = {
            run.name: [point.step for point in reader.get_metric_series(run.run_id, "loss").points]
            for run in reader.list_runs()
        }
    assert steps == {"one": [0, 1, 2, 3, 4], "two": [0, 1, 2]}


def test_text_sorts_byte_by_byte_as_in_sqlite_whatever_the_database_collation(
    en_us_url: str, tmp_path: Path
) -> None:
    """The dashboard's field names (`ORDER BY key LIMIT ?`) are the same names in the same order."""
    keys = ["Zeta", "alpha", "beta-1", "beta_2", "beta1"]
    answers = []
    for url in (None, en_us_url):
        with _contexta(tmp_path / f"ws-{url is None}", url) as ctx:
            with ctx.run("r") as run:
                for key in keys:
                    run.metric(key, 1.0)
            ctx.flush()
            answers.append(get_field_names(ctx._reads(), limit=2).metrics)  # type: ignore[attr-defined]
    assert answers[0] == ("metrics.Zeta", "metrics.alpha")
    assert answers[1] == answers[0]


def test_a_batch_the_store_refuses_for_good_does_not_hold_back_the_batches_after_it(
    postgres_url: str, tmp_path: Path
) -> None:
    """A batch the server refuses for good (here a check constraint a database administrator added;
    a NUL in text was the first such case, now stored as U+FFFD) is parked; before, every later
    batch of the process was parked behind it, never to reach the store."""
    with _contexta(tmp_path / "ws", postgres_url) as ctx:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("ALTER TABLE runs ADD CONSTRAINT no_secret_revision CHECK (code_revision <> 'bad')")
        with pytest.warns(Warning, match="no_secret_revision"):
            with ctx.run("refused", code_revision="bad"):
                pass
            ctx.flush()
        with ctx.run("after") as run:
            run.metric("loss", 1.0, step=0)
        report = ctx.flush()
        assert report.complete
        assert [run.name for run in ctx.list_runs()] == ["after"]
        stats = ctx.capture_stats()
        assert stats.outboxed == stats.failed  # the refused batch only, parked


def test_a_nul_in_one_runs_params_does_not_break_searching_every_run(
    postgres_url: str, tmp_path: Path
) -> None:
    """The JSON text stores the NUL as \\u0000 (accepted); each search by a param or tag casts every
    run's JSON to jsonb, which refuses \\u0000: store_read_failed for the whole store."""
    with _contexta(tmp_path / "ws", postgres_url) as ctx:
        with ctx.run("clean", config_snapshot={"lr": 0.1}, tags={"team": "a"}):
            pass
        with ctx.run("odd", config_snapshot={"lr": 0.2, "note": "a\x00b"}, tags={"team": "a"}):
            pass
        ctx.flush()
        assert sorted(run.name for run in ctx.list_runs(filter="params.lr > 0")) == ["clean", "odd"]
        assert sorted(run.name for run in ctx.list_runs(filter="tags.team = a")) == ["clean", "odd"]


def test_a_nul_in_an_event_message_does_not_break_diagnosing_the_run(
    postgres_url: str, tmp_path: Path
) -> None:
    with _contexta(tmp_path / "ws", postgres_url) as ctx:
        with ctx.run("r") as run:
            run.event("odd", message="a\x00b", level="info")
            run.event("broke", message="it broke", level="error")
        ctx.flush()
        issues = ctx.diagnose_run("run:team.r").issues
        assert [issue.code for issue in issues] == ["error_event"]


def test_a_write_the_server_refuses_is_a_store_error_naming_the_reason(
    postgres_url: str, tmp_path: Path
) -> None:
    """Tagging a run where a database administrator's constraint forbids it: a StoreError with a code
    (store_write_failed) and the server's reason, not psycopg's own exception; the run is unchanged."""
    with _contexta(tmp_path / "ws", postgres_url) as ctx:
        with ctx.run("tagged", tags={"team": "a"}):
            pass
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("ALTER TABLE runs ADD CONSTRAINT no_owner_tag CHECK (tags NOT LIKE '%owner%')")
        with pytest.raises(StoreError) as refused:
            ctx.tag_run("tagged", owner="ana")
        assert refused.value.code == "store_write_failed"
        assert "no_owner_tag" in refused.value.message
        assert [run.tags for run in ctx.list_runs()] == [{"team": "a"}]
