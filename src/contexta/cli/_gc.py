"""`contexta gc`: reclaim earlier executions as the retention policy says, and say what was kept.

Order, so a kill at any moment leaves a readable log and a consistent store, and the next gc
finishes the job: (1) the executions to reclaim and the artifact copies they use are written to gc's
ledger (`_gc_ledger.py`); (2) each execution's store rows go, one transaction each (re-checked there:
one opened again or live since it was planned is kept); (3) parked batches, (4) lines in sealed log
segments (each rewritten atomically) and (5) unused artifact copies of every ledger execution no
longer in the store go; (6) the store file is compacted. Runs removed with `contexta delete` (the
run journal's deletes) count as ledger executions: gc finishes their removal the same way.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contexta._retention import RetentionPolicy, format_bytes, parse_age, parse_size
from contexta.cli._gc_ledger import Ledger, ledger_path
from contexta.cli._gc_plan import Decision, plan_reclaim
from contexta.cli._output import Output, UsageError
from contexta.cli._usage import KINDS, kind_sizes, measure
from contexta.cli._workspace import require_local_store, require_store, workspace_config
from contexta.config import UnifiedConfig
from contexta.errors import ConfigurationError
from contexta.store import (
    StoreDatabase,
    any_owner_alive,
    artifact_copies,
    compact_store,
    journal_path,
    list_executions,
    read_journal,
    reclaim_executions,
)

__all__ = ["gc_command"]


def _policy(args: argparse.Namespace, config: UnifiedConfig) -> RetentionPolicy:
    try:
        return config.capture.retention.overridden(
            max_age_s=None if args.keep_age is None else parse_age(args.keep_age, "--keep-age"),
            max_bytes=None if args.keep_size is None else parse_size(args.keep_size, "--keep-size"),
            keep_executions=args.keep_executions,
        )
    except ConfigurationError as error:
        raise UsageError(error.message) from None


def _row(decision: Decision, estimate: float | None) -> dict[str, Any]:
    execution = decision.execution
    row: dict[str, Any] = {
        "project": execution.project_ref.removeprefix("project:"),
        "run": execution.name,
        "execution": execution.execution_number,
        "execution_id": execution.execution_id,
        "status": execution.status,
        "ended_at": execution.ended_at,
        "reason": decision.reason,
    }
    if estimate is not None:
        row["estimated_bytes"] = round(estimate)
    return row


def _transient_bytes(store_file: Path) -> int:
    """The store's `-shm` file: SQLite's shared-memory index of the WAL, created by gc's own open of
    the store and removed by the last close, so not space a size limit should count."""
    try:
        return os.lstat(f"{store_file}-shm").st_size
    except OSError:
        return 0


def gc_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta gc`: reclaim what the policy says (nothing by default); `--dry-run` only says what."""
    config = workspace_config(args)
    require_store(config)
    require_local_store(config, "gc")
    policy = _policy(args, config)
    layout = config.workspace
    live_dir = layout.live_dir if layout.live_dir.is_dir() else None
    database = StoreDatabase(layout.store_file, read_only=args.dry_run)
    try:
        return _gc(args, output, config, policy, database, live_dir)
    finally:
        database.close_all()


def _gc(
    args: argparse.Namespace,
    output: Output,
    config: UnifiedConfig,
    policy: RetentionPolicy,
    database: StoreDatabase,
    live_dir: Path | None,
) -> int:
    layout = config.workspace
    executions = list_executions(database, live_dir)
    usage = measure(config, database, executions) if args.dry_run or policy.max_bytes is not None else None
    size_of = None if usage is None else (lambda e: usage.execution_total(e, reclaimable=True))
    decisions = plan_reclaim(
        executions,
        policy,
        datetime.now(UTC),
        total_bytes=0 if usage is None else usage.total - _transient_bytes(layout.store_file),
        size_of=size_of,
    )
    chosen = [d for d in decisions if d.reclaim]
    estimate = (lambda e: None) if size_of is None else size_of
    report: dict[str, Any] = {
        "workspace": str(layout.root),
        "dry_run": bool(args.dry_run),
        "policy": policy.describe(),
        "reclaimed": [_row(d, estimate(d.execution.execution_id)) for d in chosen],
        "kept": [_row(d, None) for d in decisions if not d.reclaim],
    }
    if args.dry_run:
        report["estimated_bytes"] = (
            round(sum(size_of(d.execution.execution_id) for d in chosen)) if size_of else 0
        )
        return _print(output, args, report)
    before = kind_sizes(config)
    ledger = Ledger.read(ledger_path(layout.cache_dir))
    _add_deleted_runs(ledger, layout.store_file)
    copies = artifact_copies(database)
    ids = [d.execution.execution_id for d in chosen]
    ledger.append(ids, sorted(path for path, holders in copies.items() if set(holders) & set(ids)))
    results = reclaim_executions(database, ids, live_dir)
    kept_late = {result.execution_id: result.kept for result in results if result.kept}
    report["reclaimed"] = [row for row in report["reclaimed"] if row["execution_id"] not in kept_late]
    report["kept"] += [
        {**_row(d, None), "reason": f"{kept_late[d.execution.execution_id]} (when gc came to it)"}
        for d in chosen
        if d.execution.execution_id in kept_late
    ]
    report["store_rows"] = _sum_rows(results)
    stored = {execution.execution_id for execution in list_executions(database, None)}
    gone = sorted(ledger.executions - stored)

    from contexta.capture import reclaim_outbox, remove_from_sealed_segments

    outbox = reclaim_outbox(layout.outbox_dir, gone)
    report["outbox"] = {
        "batches_removed": outbox.batches_removed,
        "batches_kept_holding_other_executions": outbox.batches_kept_mixed,
        "batches_kept_being_delivered": outbox.batches_kept_busy,
    }
    rewrite = remove_from_sealed_segments(layout.capture_dir, gone)
    report["log"] = {
        "lines_removed": rewrite.lines_removed,
        "segments_rewritten": rewrite.segments_rewritten,
        "segments_skipped": [{"path": path, "why": why} for path, why in rewrite.skipped],
        "active_segments": "never touched",
    }
    report["artifact_files_removed"] = _remove_unused_copies(database, ledger, layout.artifacts_dir)
    compaction = compact_store(database, others_capture=any_owner_alive(live_dir))
    report["store_compaction"] = {"method": compaction.method, "why": compaction.reason}
    after = kind_sizes(config)
    report["bytes_before"] = before
    report["bytes_after"] = after
    report["freed"] = {kind: before[kind] - after[kind] for kind in KINDS}
    return _print(output, args, report)


def _add_deleted_runs(ledger: Ledger, store_file: Path) -> None:
    """What `delete` removed from the store (the run journal's deletes) is finished like what gc
    reclaimed itself: the executions' log lines and parked batches, and their unused artifact copies."""
    for change in read_journal(journal_path(store_file)):
        if change.action == "delete":
            ledger.executions.update(change.executions)
            ledger.artifact_files.update(change.artifact_files)


def _sum_rows(results: list[Any]) -> dict[str, int]:
    rows: dict[str, int] = {"metric_points": 0}
    for result in results:
        rows["metric_points"] += result.points
        for table, count in result.rows.items():
            rows[table] = rows.get(table, 0) + count
    return rows


def _remove_unused_copies(database: StoreDatabase, ledger: Ledger, artifacts_dir: Path) -> int:
    """Delete the ledger's artifact copies that no manifest points at any more (only inside the
    workspace's artifacts directory: a path elsewhere is never gc's to delete)."""
    used = set(artifact_copies(database))
    root = os.path.join(os.path.abspath(artifacts_dir), "")
    removed = 0
    for path in sorted(ledger.artifact_files - used):
        if not os.path.abspath(path).startswith(root):
            continue
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _print(output: Output, args: argparse.Namespace, report: dict[str, Any]) -> int:
    if args.format == "json":
        output.json(report)
        return 0
    dry = report["dry_run"]
    reclaimed, kept = report["reclaimed"], report["kept"]
    verb = "Would reclaim" if dry else "Reclaimed"
    output.line(f"{verb} {len(reclaimed)} execution(s) (policy: {report['policy']}).")
    for row in reclaimed:
        size = f", about {format_bytes(row['estimated_bytes'])}" if "estimated_bytes" in row else ""
        output.line(f"  {row['project']} / {row['run']}@{row['execution']}: {row['reason']}{size}")
    if dry:
        if report.get("estimated_bytes"):
            output.line(f"About {format_bytes(report['estimated_bytes'])} would be freed (estimated).")
        output.line("Dry run: nothing was changed.")
    else:
        freed = report["freed"]
        parts = ", ".join(f"{kind} {format_bytes(size)}" for kind, size in freed.items() if size > 0)
        output.line(
            f"Freed {format_bytes(sum(s for s in freed.values() if s > 0))} on disk"
            + (f" ({parts})." if parts else ".")
        )
        log = report["log"]
        output.line(
            f"Log: {log['lines_removed']} lines removed from {log['segments_rewritten']} sealed segment(s); "
            "active segments are never touched."
        )
        for skipped in log["segments_skipped"]:
            output.line(f"  left as it is: {skipped['path']} ({skipped['why']})")
        output.line(
            f"Store: compaction {report['store_compaction']['method']}: {report['store_compaction']['why']}."
        )
        if report["outbox"]["batches_removed"] or report["artifact_files_removed"]:
            output.line(
                f"Removed {report['outbox']['batches_removed']} parked batch(es) and "
                f"{report['artifact_files_removed']} unused artifact copie(s)."
            )
    output.line(f"Kept {len(kept)} execution(s):")
    for row in kept:
        output.line(f"  {row['project']} / {row['run']}@{row['execution']}: {row['reason']}")
    return 0
