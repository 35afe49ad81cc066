"""`contexta repair`, `contexta replay` and `contexta migrate`: the commands that change a workspace's
store (putting it right after a crash or a failing sink, bringing it up to this version's schema)."""

from __future__ import annotations

import argparse
import dataclasses

from contexta.cli._output import CommandError, Output
from contexta.cli._workspace import (
    open_workspace_for_writing,
    require_store,
    workspace_config,
)
from contexta.store import open_store_database

__all__ = ["migrate_command", "repair_command", "replay_command"]


def repair_command(args: argparse.Namespace, output: Output) -> int:
    """Rebuild the store from the capture log. Works on a store too damaged to open."""
    config = workspace_config(args)
    layout = config.workspace
    if not layout.capture_dir.is_dir():
        raise CommandError(f"no capture log in {layout.root} ({layout.capture_dir} does not exist)")
    from contexta.capture import rebuild_store

    report = rebuild_store(layout.store_file, layout.capture_dir, layout.live_dir)
    if args.format == "json":
        output.json(dataclasses.asdict(report))
        return 0
    output.line(
        f"Rebuilt {layout.store_file} from the capture log: {report.runs} runs, "
        f"{report.records} records, {report.artifacts} artifacts."
    )
    if report.interrupted_runs:
        output.line(f"Never closed, marked failed (interrupted): {', '.join(report.interrupted_runs)}")
    for name, numbers in report.skipped_lines.items():
        output.line(f"Skipped unreadable lines of {name}: {', '.join(map(str, numbers))}")
    if report.previous_store is not None:
        output.line(f"The previous store is kept at {report.previous_store}")
    return 0


def replay_command(args: argparse.Namespace, output: Output) -> int:
    """Deliver the batches sinks refused earlier (parked in the outbox), each exactly once."""
    with open_workspace_for_writing(args) as ctx:
        report = ctx.replay_outbox()
    if args.format == "json":
        output.json(dataclasses.asdict(report))
    else:
        output.line(
            f"Delivered {report.delivered_batches} parked batches ({report.delivered_records} records); "
            f"{report.remaining_batches} still parked."
        )
        for error in report.errors:
            output.line(f"  {error}")
    return 0 if not report.remaining_batches else 1


def migrate_command(args: argparse.Namespace, output: Output) -> int:
    """Bring the store up to this version's schema (what opening it for capture would do), so the
    read commands can read it where it is writable only by this user or only now."""
    config = workspace_config(args)
    require_store(config)
    path = config.workspace.store_file
    database = open_store_database(path, config.store.url)
    try:
        with database.read():  # a writable open migrates
            pass
    finally:
        database.close_all()
    migrated_from = database.migrated_from
    if args.format == "json":
        output.json({"store": str(path), "migrated_from": migrated_from})
    elif migrated_from is None:
        output.line(f"{path} is already at this version's schema; nothing to do.")
    else:
        output.line(f"Migrated {path} from store schema {migrated_from} to this version's.")
    return 0
