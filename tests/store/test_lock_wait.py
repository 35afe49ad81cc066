"""A writer that cannot get the store's write lock waits a bounded time, says who holds it, and what
it could not write is parked and replayed: never minutes of silent retry.

The holder is a real process with a write transaction open; the capturing process cuts the bounds
(`LOCK_WAIT_S`, `LOCK_WARN_S`) to a second so the test does not wait a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from contexta import Contexta

_HOLD_THE_LOCK = textwrap.dedent(
    """
    import sqlite3, sys
    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    connection.execute("ROLLBACK")
    """
)

_CAPTURE = textwrap.dedent(
    """
    import json, sys, warnings
    import contexta.store._database as database
    from contexta import Contexta

    database.LOCK_WAIT_S, database.LOCK_WARN_S = 1.0, 0.3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctx = Contexta(workspace=sys.argv[1], config={"project_name": "locked"})
        with ctx.run("waits") as run, run.stage("train") as stage:
            for step in range(10):
                stage.metric("loss", 1.0 / (step + 1), step=step)
        report = ctx.flush(timeout=30)  # flush_timeout if the store lane retried for minutes
        stats = ctx.capture_stats()
        ctx.close()
    print(json.dumps({
        "errors": list(report.errors),
        "written": stats.written,
        "outboxed": stats.outboxed,
        "warnings": [str(warning.message) for warning in caught],
    }))
    """
)


@pytest.mark.sqlite_only("SQLite's write lock, held by another process")
def test_a_writer_waits_a_bounded_time_names_the_holder_and_parks_what_it_could_not_write(
    tmp_path: Path,
) -> None:
    # Breaks without the bound: the store lane retried BEGIN IMMEDIATE for 600 s, so the flush
    # timed out with "is a sink stuck?" and nobody learned which process held the lock.
    workspace = tmp_path / ".contexta"
    Contexta(workspace=workspace, config={"project_name": "locked"}).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THE_LOCK, str(workspace / "metadata" / "contexta.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        done = subprocess.run(
            [sys.executable, "-c", _CAPTURE, str(workspace)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        holder.communicate("", timeout=30)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])

    named = f"process {holder.pid}"
    assert seen["errors"] and all("store_locked" in error and named in error for error in seen["errors"])
    assert any("waiting" in warning and named in warning for warning in seen["warnings"]), seen
    assert seen["outboxed"] > 0 and seen["written"] == 0  # everything reached the log, none the store
    with Contexta(workspace=workspace, config={"project_name": "locked"}) as ctx:
        assert ctx.list_runs() == []
        replayed = ctx.replay_outbox()
        assert replayed.remaining_batches == 0 and replayed.delivered_records == seen["outboxed"]
        assert [run.status for run in ctx.list_runs()] == ["completed"]
        assert ctx.get_metric_series("waits", "loss").steps == tuple(range(10))
