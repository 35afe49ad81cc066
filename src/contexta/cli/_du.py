"""`contexta du`: where a workspace's space goes, by kind, run (execution) or project.

It only reads: the store read-only, the log and the outbox file by file. Totals by kind are exact
(file sizes); an execution's share is apportioned (see `_usage.py`), and what belongs to no stored
execution is shown on its own row, so every column adds up to the files on disk.
"""

from __future__ import annotations

import argparse
from typing import Any

from contexta._retention import format_bytes
from contexta.cli._output import Output
from contexta.cli._tables import Column, render_table
from contexta.cli._usage import ESTIMATES, KINDS, WorkspaceUsage, measure
from contexta.cli._workspace import require_local_store, require_store, workspace_config
from contexta.store import ExecutionSummary, StoreDatabase, list_executions

__all__ = ["du_command", "usage_rows"]

UNATTRIBUTED = "(shared)"
# Parts shown per row: the log (sealed and active together), the store, artifacts, the outbox.
_COLUMNS = ("log", "store", "artifacts", "outbox")


def _project(execution: ExecutionSummary) -> str:
    return execution.project_ref.removeprefix("project:")


def usage_rows(usage: WorkspaceUsage, executions: list[ExecutionSummary], by: str) -> list[dict[str, Any]]:
    """One row per execution (`run`) or project, then the unattributed row; bytes are whole numbers,
    the unattributed row takes the rounding, so each column adds up to its kinds' exact total."""
    rows: dict[str, dict[str, Any]] = {}
    for execution in executions:
        parts = usage.by_execution.get(execution.execution_id, {})
        if by == "project":
            key = _project(execution)
            row = rows.setdefault(key, {"project": key, "executions": 0, **dict.fromkeys(_COLUMNS, 0.0)})
            row["executions"] += 1
        else:
            key = execution.execution_id
            row = rows.setdefault(
                key,
                {
                    "project": _project(execution),
                    "run": execution.name,
                    "execution": execution.execution_number,
                    "execution_id": execution.execution_id,
                    "status": execution.status,
                    **dict.fromkeys(_COLUMNS, 0.0),
                },
            )
        row["log"] += parts.get("log", 0.0) + parts.get("log_active", 0.0)
        for part in ("store", "artifacts", "outbox"):
            row[part] += parts.get(part, 0.0)
    result = list(rows.values())
    for row in result:
        for part in _COLUMNS:
            row[part] = round(row[part])
        row["total"] = sum(row[part] for part in _COLUMNS)
    exact = {
        "log": sum(usage.by_kind[kind] for kind in KINDS if kind.startswith("log")),
        "store": usage.by_kind["store"],
        "artifacts": usage.by_kind["artifacts"],
        "outbox": usage.by_kind["outbox"],
    }
    rest: dict[str, Any] = (
        {"project": None, "run": UNATTRIBUTED} if by == "run" else {"project": UNATTRIBUTED}
    )
    for part in _COLUMNS:
        rest[part] = exact[part] - sum(row[part] for row in result)
    rest["other"] = usage.by_kind["other"]
    rest["total"] = sum(rest[part] for part in (*_COLUMNS, "other"))
    return [*result, rest]


def du_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta du`: bytes by kind, and by run or project."""
    config = workspace_config(args)
    require_store(config)
    require_local_store(config, "du")
    database = StoreDatabase(config.workspace.store_file, read_only=True)
    try:
        executions = list_executions(database, None)
        usage = measure(config, database, executions)
    finally:
        database.close_all()
    by = args.by or "run"
    rows = [] if by == "kind" else usage_rows(usage, executions, by)
    if args.format == "json":
        output.json(
            {
                "workspace": str(usage.root),
                "total_bytes": usage.total,
                "by_kind": usage.by_kind,
                "by": by,
                "rows": rows,
                "exact": "totals by kind: the sizes of the files on disk",
                "estimated": {**ESTIMATES, "store": usage.store_method},
            }
        )
        return 0
    output.line(f"{format_bytes(usage.total)} in {usage.root}")
    kind_rows = [[kind, format_bytes(size), str(size)] for kind, size in usage.by_kind.items()]
    output.lines(
        render_table(
            [Column("kind"), Column("size", numeric=True), Column("bytes", numeric=True)],
            kind_rows,
            output.width,
        )
    )
    if by == "kind":
        return 0
    output.line()
    first = [Column("project")] + ([Column("run"), Column("execution", keep=True)] if by == "run" else [])
    columns = [*first, *(Column(part, numeric=True) for part in (*_COLUMNS, "total"))]
    table = []
    for row in rows:
        label = [row["project"] or ""]
        if by == "run":
            label += [row["run"], "" if "execution" not in row else f"@{row['execution']}"]
        table.append([*label, *(format_bytes(row[part]) for part in (*_COLUMNS, "total"))])
    output.lines(render_table(columns, table, output.width))
    output.line()
    output.line(
        "Totals by kind are exact (file sizes). Per-run log bytes are apportioned (each segment split by "
        "its lines' bytes); the store's per-run share is estimated (table sizes from SQLite, split by "
        "rows). (shared) is what no stored execution owns: the store's other tables and free pages, lines "
        "of executions no longer stored, and other files (locks, kept store copies, gc's ledger)."
    )
    return 0
