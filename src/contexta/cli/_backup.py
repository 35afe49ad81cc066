"""`contexta backup DEST` and `contexta restore SRC`: a consistent copy of a workspace, and the
workspace rebuilt from one after the whole copy is checked."""

from __future__ import annotations

import argparse

from contexta.cli import _cells as cells
from contexta.cli._output import Output
from contexta.cli._workspace import workspace_config

__all__ = ["backup_command", "restore_command"]


def backup_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta backup DEST`: copy the workspace (even while something captures into it) into the
    new or empty directory DEST, with a manifest of every file's size and BLAKE3 digest."""
    from contexta.backup import backup_workspace  # the capture log's reader comes with it

    config = workspace_config(args)
    result = backup_workspace(config.workspace.root, args.destination, config=config)
    if args.format == "json":
        output.json(result.to_dict())
        return 0
    output.line(
        f"Backed up {result.manifest.source} to {result.destination}: {len(result.manifest.files)} files, "
        f"{cells.size(result.total_bytes)}."
    )
    external = result.manifest.external_artifacts
    if external:
        output.line(
            f"{len(external)} registered artifact file{'' if len(external) == 1 else 's'} outside the "
            "workspace {} named in the manifest, not copied.".format("is" if len(external) == 1 else "are")
        )
    return 0


def restore_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta restore SRC [--workspace W]`: check every file of the backup in SRC, then put the
    restored workspace at W, keeping the one it replaces beside it."""
    from contexta.backup import restore_workspace

    config = workspace_config(args)
    result = restore_workspace(args.source, config.workspace.root, config=config)
    if args.format == "json":
        output.json(result.to_dict())
        return 0
    output.line(
        f"Restored {result.files} files ({cells.size(result.total_bytes)}) into {result.workspace}; "
        "every file matched the backup's manifest."
    )
    if result.previous_workspace is not None:
        output.line(
            f"The workspace it replaced is kept at {result.previous_workspace} (remove it when satisfied)."
        )
    return 0
