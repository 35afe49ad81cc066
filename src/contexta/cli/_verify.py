"""`contexta verify`: re-hash registered artifacts and say which files are no longer what was registered."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from contexta import Workspace
from contexta.cli._output import CommandError, Output
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace
from contexta.errors import NotFoundError
from contexta.query import ArtifactRecord

if TYPE_CHECKING:  # capture is imported by `verify` alone, when it meets an unknown artifact
    from contexta.capture import ArtifactVerification

__all__ = ["verify_command"]


def _verify_stored(ctx: Workspace, artifact: ArtifactRecord) -> ArtifactVerification:
    try:
        return ctx.verify_artifact(artifact.artifact_ref)
    except NotFoundError:
        # In the store but not in this workspace's capture log (history written by hand, a log that
        # was removed, other sinks): nothing says what the file should hash to.
        from contexta.capture import ArtifactVerification

        return ArtifactVerification(
            artifact.artifact_ref,
            "unknown",
            artifact.location.partition(":")[2],
            artifact.hash_value,
            None,
            artifact.size_bytes,
            None,
        )


def _verify_all(ctx: Workspace, project: str | None) -> list[ArtifactVerification]:
    return [
        _verify_stored(ctx, artifact)
        for run in ctx.list_runs(project, include_archived=True)  # archiving hides, never skips checks
        for artifact in ctx.list_artifacts(run.run_id)
    ]


def verify_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta verify [ARTIFACT]`: one artifact, or every artifact of every run (of `--project`),
    re-hashed; exit 1 when any is not `verified`."""
    with open_workspace(args) as ctx:
        if args.artifact is not None:
            results = [ctx.verify_artifact(args.artifact)]
        else:
            results = _verify_all(ctx, args.project)
    if args.format == "json":
        output.json([result.to_dict() for result in results])
    elif not results:
        output.line("No artifacts are registered in this workspace.")
    else:
        output.lines(
            render_table(
                [Column("artifact"), Column("status", keep=True), Column("path")],
                [[result.artifact_ref, result.status, result.path] for result in results],
                output.width,
            )
        )
    failed = [result for result in results if not result.ok]
    if failed:
        statuses = ", ".join(dict.fromkeys(result.status for result in failed))
        raise CommandError(f"{len(failed)} of {len(results)} artifacts did not verify ({statuses})")
    return 0
