"""Runs whose process died: found when a workspace is opened, and marked so they are not open forever.

A run is `open` in the store from its first batch until its closing batch commits. A process killed
in between (by the scheduler, the OOM killer, a SIGKILL) never writes the close, and trackers that do
not look would show it running forever. Every run records the pid and host that own it; opening a
`Contexta` checks the open runs of this host and marks those whose process is gone as `failed`, with
`end_reason = 'interrupted'`, which diagnostics report as an `interrupted` error. Runs of other hosts
are left alone: their processes cannot be checked from here.
"""

from __future__ import annotations

import os
import socket

from contexta.contract._timestamps import instant_key, utc_now
from contexta.store._database import StoreDatabase

__all__ = ["INTERRUPTED", "mark_interrupted_runs", "process_alive"]

INTERRUPTED = "interrupted"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:
        return False
    return True


def mark_interrupted_runs(database: StoreDatabase, host: str | None = None) -> list[str]:
    """Mark this host's open runs whose owning process is gone as failed (interrupted); their refs."""
    host = socket.gethostname() if host is None else host
    with database.read() as connection:
        candidates = connection.execute(
            "SELECT run_ref, owner_pid, started_at FROM runs WHERE status = 'open' AND owner_host = ? "
            "AND owner_pid IS NOT NULL",
            (host,),
        ).fetchall()
    gone = [
        (run_ref, started_at)
        for run_ref, pid, started_at in candidates
        if pid != os.getpid() and not process_alive(pid)
    ]
    if not gone:
        return []
    detected = utc_now()
    marked = []
    with database.transaction() as connection:
        for run_ref, started_at in gone:
            # ended_at is when the loss was noticed, never before the start it is compared with.
            ended = max(detected, started_at, key=instant_key)
            cursor = connection.execute(
                "UPDATE runs SET status = 'failed', ended_at = ?, end_reason = ? "
                "WHERE run_ref = ? AND status = 'open'",
                (ended, INTERRUPTED, run_ref),
            )
            if cursor.rowcount:
                marked.append(run_ref)
    return marked
