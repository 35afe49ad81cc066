"""`contexta artifact get ARTIFACT DEST`: write a registered artifact's bytes to a path, checked
against its digest, from the copy kept in S3 or the workspace (else the original file)."""

from __future__ import annotations

import argparse

from contexta.cli._output import Output
from contexta.cli._workspace import open_workspace

__all__ = ["artifact_get_command"]


def artifact_get_command(args: argparse.Namespace, output: Output) -> int:
    """Fetch one artifact to `args.destination` and print where it was written."""
    with open_workspace(args) as ctx:
        written = ctx.fetch_artifact(args.artifact, args.destination)
    if args.format == "json":
        output.json({"artifact_ref": args.artifact, "path": str(written)})
    else:
        output.line(str(written))
    return 0
