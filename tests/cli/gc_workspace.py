"""A workspace for `contexta gc` and `contexta du`: two run names, each run three times, every
execution with its own metric values, events, an artifact kept in the workspace (two executions of
`a` share one content), and 64 KiB segments so the log is mostly sealed, compressed segments."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from contexta import Contexta
from contexta.capture import execution_of_line, read_capture_log

PROJECT = "gcp"
CONFIG: dict[str, Any] = {"project_name": PROJECT, "capture": {"segment_bytes": 64 * 1024}}
POINTS = 400
FAMILIES = ("context.jsonl", "record.jsonl", "artifact.jsonl")
# Tables whose rows belong to an execution by its `execution_id`.
OWNED = (
    "runs",
    "records",
    "stages",
    "batches",
    "samples",
    "operations",
    "environments",
    "artifacts",
    "metric_series",
)


def capture_one(ctx: Contexta, root: Path, name: str, attempt: int, points: int = POINTS) -> str:
    """One execution of `name`; returns its execution id."""
    content = b"shared weights" if name == "a" and attempt < 2 else f"{name}{attempt}".encode() * 500
    model = root / f"model-{name}-{attempt}.bin"
    model.write_bytes(content)
    with ctx.run(name, config_snapshot={"attempt": attempt}) as run:
        with run.stage("train") as stage:
            for step in range(points):
                stage.metric("loss", attempt * 1000.0 + step, step=step)
        run.event("done", message=f"{name} attempt {attempt}")
        registered = run.register_artifact("model", model)
        execution = run.execution_id
    ctx.artifact_store.keep_copy(registered.payload["manifest"].artifact_ref)
    return execution


def capture_workspace(
    root: Path, attempts: int = 3, points: int = POINTS
) -> tuple[Path, dict[str, list[str]]]:
    """The workspace and the execution ids of each name, oldest first."""
    workspace = root / ".contexta"
    executions: dict[str, list[str]] = {"a": [], "b": []}
    with Contexta(workspace=workspace, config=CONFIG) as ctx:
        for attempt in range(attempts):
            for name in ("a", "b"):
                executions[name].append(capture_one(ctx, root, name, attempt, points))
    return workspace, executions


def log_lines(workspace: Path) -> dict[str, list[dict[str, Any]]]:
    """Every readable line of each family's log (sealed segments, then the active file)."""
    found = {}
    for family in FAMILIES:
        read = read_capture_log(workspace / "cache" / "capture" / family)
        assert read.skipped_lines == [], family
        found[family] = read.lines
    return found


def executions_in_log(workspace: Path, *, sealed_only: bool) -> set[str | None]:
    from contexta.capture import iter_capture_log, log_segments

    seen: set[str | None] = set()
    for family in ("CONTEXT", "RECORD", "ARTIFACT"):
        for segment in log_segments(workspace / "cache" / "capture", family):
            if sealed_only and segment.active:
                continue
            for _, line, _ in iter_capture_log(segment.path):
                if line is not None:
                    seen.add(execution_of_line(line))
    return seen


def store_rows(workspace: Path, execution: str) -> dict[str, int]:
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        rows = {
            table: connection.execute(
                f"SELECT count(*) FROM {table} WHERE execution_id = ?", (execution,)
            ).fetchone()[0]
            for table in OWNED
        }
        rows["metric_chunks"] = connection.execute(
            "SELECT count(*) FROM metric_chunks WHERE series_id IN "
            "(SELECT series_id FROM metric_series WHERE execution_id = ?)",
            (execution,),
        ).fetchone()[0]
    return rows


def integrity(workspace: Path) -> str:
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def file_digests(directory: Path) -> dict[str, str]:
    digests = {}
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            digests[os.path.relpath(path, directory)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return digests


def disk_bytes(directory: Path) -> int:
    return sum(
        os.lstat(os.path.join(folder, name)).st_size
        for folder, _, names in os.walk(directory)
        for name in names
    )
