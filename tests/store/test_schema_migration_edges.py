"""Schema-1 stores the migration must carry over even when they are odd or large: environment rows
whose runs are missing (a run deleted by hand, a half-written import), and a store of 2,000 runs
and 100,000 events (the copies matched each row to its execution by a scan of every run).

The schema-1 stores are written with plain SQL from `MIGRATIONS[1]`, the way that version laid them
out; nothing of today's write path touches them before the migration.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from contexta import Contexta
from contexta.contract._timestamps import instant_key
from contexta.store._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

pytestmark = pytest.mark.sqlite_only("migrates SQLite files of earlier schemas")

PROJECT = "legacy"


class SchemaOne:
    """A schema-1 database file being written, one transaction."""

    def __init__(self, workspace: Path):
        path = workspace / "metadata" / "contexta.db"
        path.parent.mkdir(parents=True)
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("BEGIN")
        for statement in MIGRATIONS[1]:
            self.connection.execute(statement)
        self.connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
        self.connection.execute("PRAGMA user_version=1")
        self.connection.execute(
            "INSERT INTO projects (project_ref, name, created_at) VALUES (?, ?, ?)",
            (f"project:{PROJECT}", PROJECT, "2025-01-01T00:00:00Z"),
        )
        self.seq = 0

    def runs(self, names: list[str]) -> None:
        rows = []
        for number, name in enumerate(names):
            started = f"2025-01-01T{number // 3600 % 24:02d}:{number // 60 % 60:02d}:{number % 60:02d}Z"
            rows.append(
                (f"run:{PROJECT}.{name}", f"project:{PROJECT}", name, started, started, instant_key(started))
            )
        self.connection.executemany(
            "INSERT INTO runs (run_ref, project_ref, name, status, started_at, ended_at, started_key) "
            "VALUES (?, ?, ?, 'completed', ?, ?, ?)",
            rows,
        )

    def environment(self, run_ref: str, python_version: str) -> None:
        self.connection.execute(
            "INSERT INTO environments (run_ref, captured_at, python_version, platform, packages) "
            "VALUES (?, '2025-01-01T00:00:01Z', ?, 'Linux-5.15-x86_64', ?)",
            (run_ref, python_version, orjson.dumps({"numpy": "1.26.4"}).decode()),
        )

    def events(self, owners: list[str], observed_at: str = "2025-01-01T00:01:00Z") -> None:
        """One event per entry of `owners` (a run ref each), in this order."""
        rows: list[tuple[Any, ...]] = []
        for run_ref in owners:
            self.seq += 1
            record_ref = f"record:{run_ref.partition(':')[2]}.a1b2c3d4-{self.seq}"
            envelope = {
                "record_ref": record_ref,
                "record_type": "event",
                "recorded_at": observed_at,
                "observed_at": observed_at,
                "producer_ref": "contexta.capture",
                "completeness_marker": "complete",
                "degradation_marker": "none",
                "schema_version": "1.0",
                "run_ref": run_ref,
            }
            payload = {
                "event_key": "step.done",
                "level": "info",
                "message": f"event {self.seq}",
                "origin_marker": "explicit_capture",
                "subject_ref": run_ref,
            }
            document = orjson.dumps({"envelope": envelope, "payload": payload}).decode()
            rows.append((self.seq, record_ref, run_ref, observed_at, document))
        self.connection.executemany(
            "INSERT INTO records (seq, record_ref, record_type, run_ref, observed_at, recorded_at, key, "
            "document) VALUES (?, ?, 'event', ?, ?, ?4, 'step.done', ?)",
            rows,
        )

    def close(self) -> None:
        self.connection.execute("UPDATE counters SET value = ? WHERE name = 'seq'", (self.seq,))
        self.connection.execute("COMMIT")
        self.connection.close()


def _user_version(workspace: Path) -> int:
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])


def _events(ctx: Contexta, run_id: str) -> list[str]:
    return [
        record.payload.message
        for record in ctx.get_run_snapshot(run_id).records
        if record.envelope.record_type == "event"
    ]


def test_environments_whose_runs_are_missing_do_not_stop_the_migration(tmp_path: Path) -> None:
    # Breaks if every orphan environment was given the same empty execution id: the second one
    # collided with the first, the migration failed, and the store could not be opened at all.
    workspace = tmp_path / ".contexta"
    store = SchemaOne(workspace)
    store.runs(["kept"])
    store.environment(f"run:{PROJECT}.kept", "3.11.4")
    store.environment(f"run:{PROJECT}.gone-1", "3.10.1")
    store.environment(f"run:{PROJECT}.gone-2", "3.10.2")
    store.events([f"run:{PROJECT}.kept"])
    store.close()

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        assert _user_version(workspace) == SCHEMA_VERSION
        assert [run.run_id for run in ctx.list_runs()] == [f"run:{PROJECT}.kept"]
        environment = ctx.get_environment("kept")
        assert environment is not None and environment.python_version == "3.11.4"
        assert _events(ctx, "kept") == ["event 1"]
        # The store takes new captures after the migration.
        with ctx.run("kept") as run:
            run.metric("acc", 1.0)
        assert [r.run_id for r in ctx.list_runs(all_executions=True)] == [
            f"run:{PROJECT}.kept@1",
            f"run:{PROJECT}.kept",
        ]


RUNS = 2_000
EVENTS = 100_000


def test_a_store_of_two_thousand_runs_and_a_hundred_thousand_events_migrates(tmp_path: Path) -> None:
    # The reviewer's 4,000-run store took 48 s to migrate (each copied row looked its run up by a
    # scan of every run); this only checks that a large store migrates whole, not how fast.
    workspace = tmp_path / ".contexta"
    store = SchemaOne(workspace)
    names = [f"run-{number:04d}" for number in range(RUNS)]
    store.runs(names)
    refs = [f"run:{PROJECT}.{name}" for name in names]
    store.events([refs[number % RUNS] for number in range(EVENTS)])
    store.close()

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        assert _user_version(workspace) == SCHEMA_VERSION
        listed = ctx.list_runs(all_executions=True)
        assert len(listed) == RUNS
        assert {run.run_id for run in listed} == set(refs)
        assert all(run.execution_number == 1 and run.latest for run in listed)
        per_run = EVENTS // RUNS
        for name in (names[0], names[RUNS // 2], names[-1]):
            messages = _events(ctx, name)
            assert len(messages) == per_run
        first = _events(ctx, names[0])
        assert first[:2] == ["event 1", f"event {RUNS + 1}"]
