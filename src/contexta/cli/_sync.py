"""`contexta sync --to postgresql://...`: push a workspace captured offline into the team's store."""

from __future__ import annotations

import argparse

from contexta.cli._maintenance import replay_command
from contexta.cli._output import Output
from contexta.cli._workspace import workspace_config
from contexta.config import redacted_url

__all__ = ["sync_command"]


def sync_command(args: argparse.Namespace, output: Output) -> int:
    """With `--to`: deliver what the capture log of `--from` (default: `--workspace`) holds and the
    target lacks; safe to run again or after an interruption. Without: deliver the batches the
    workspace's own store refused while it was unreachable (parked in its outbox), each once."""
    if args.to is None:
        if args.source is not None:
            args.workspace = args.source
        return replay_command(args, output)
    from contexta import sync_workspace

    config = workspace_config(args)
    source = args.source if args.source is not None else config.workspace.root
    report = sync_workspace(source, args.to, config=None if args.source is not None else config)
    if args.format == "json":
        output.json({**report.to_dict(), "to": redacted_url(args.to)})
        return 0
    output.line(
        f"Synced {source} into {redacted_url(args.to)}: {report.delivered_lines} log lines delivered in "
        f"{report.batches} batches; {report.already_there_lines} were there already."
    )
    for name, numbers in report.skipped_lines.items():
        output.line(f"Skipped {len(numbers)} unreadable line(s) of {name} (torn or damaged).")
    return 0
