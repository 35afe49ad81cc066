"""`contexta tail`: the capture log's last lines, and with `--follow` the new ones as they are written."""

from __future__ import annotations

import argparse
import time

from contexta.cli._capture_log import LogFollower, last_lines
from contexta.cli._log_entries import LogEntry, describe_line, render_entry
from contexta.cli._output import CommandError, Output
from contexta.cli._workspace import workspace_config

__all__ = ["LOG_FAMILIES", "tail_command"]

# The capture log's families, as the `--family` option names them, in the order `tail` shows them.
LOG_FAMILIES = ("record", "artifact", "context")
POLL_INTERVAL_S = 0.2


def _print(entries: list[LogEntry], output: Output, as_json_lines: bool) -> None:
    for entry in entries:
        if as_json_lines:
            output.json_line(entry.line)
        else:
            output.line(render_entry(entry, output.width))


def _ordered(entries: list[LogEntry]) -> list[LogEntry]:
    # Stable: lines of one file that share an instant keep their written order.
    return sorted(entries, key=lambda entry: entry.sort_key)


def tail_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta tail [--follow] [--lines N] [--family record|artifact|context]`: the last N lines of
    the capture log (every family, merged by time, unless one is named), one readable line each.

    With `--follow` it keeps polling for lines until interrupted (Ctrl-C exits 0); json prints the
    log's own objects, as a list, or as JSON Lines when following.
    """
    config = workspace_config(args)
    root = config.workspace.root
    if not root.is_dir():
        raise CommandError(f"no workspace at {root}: capture a run into it first, or pass --workspace PATH")
    families = [args.family] if args.family is not None else list(LOG_FAMILIES)
    followers: list[LogFollower] = []
    recent: list[LogEntry] = []
    for family in families:
        path = config.workspace.capture_log_file(family)
        lines, follower = last_lines(path, args.lines)
        recent += [describe_line(line) for line in lines]
        followers.append(follower)
    recent = _ordered(recent)[-args.lines :] if args.lines else []
    try:
        return _show(recent, followers, args, output)
    finally:
        for follower in followers:
            follower.close()


def _show(
    recent: list[LogEntry], followers: list[LogFollower], args: argparse.Namespace, output: Output
) -> int:
    as_json = args.format == "json"
    if as_json and not args.follow:
        output.json([dict(entry.line) for entry in recent])
        return 0
    _print(recent, output, as_json)
    output.flush()
    if not args.follow:
        return 0
    try:
        while True:
            time.sleep(POLL_INTERVAL_S)
            fresh = [describe_line(line) for follower in followers for line in follower.read_new()]
            if fresh:
                _print(_ordered(fresh), output, as_json)
                output.flush()
    except KeyboardInterrupt:
        return 0
