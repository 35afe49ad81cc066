"""`contexta audit RUN`: what running a run again would need, and what of it is missing."""

from __future__ import annotations

import argparse

from contexta.cli._output import CommandError, Output
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace
from contexta.query import ReproducibilityAudit

__all__ = ["audit_command"]


def _audit_text(audit: ReproducibilityAudit, output: Output) -> None:
    output.line(f"Reproducibility of {audit.run_id}")
    output.lines(
        render_table(
            [Column("check", keep=True), Column("status", keep=True), Column("detail", wrap=True)],
            [
                [
                    check.name,
                    check.status,
                    check.detail if check.subject_ref is None else f"{check.subject_ref}: {check.detail}",
                ]
                for check in audit.checks
            ],
            output.width,
        )
    )


def audit_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta audit RUN`: each check ok, missing or unknown (json: the audit). Exit 1 when a check
    is `missing` (something needed to run it again is not there, or an artifact no longer verifies);
    `unknown` (the capture does not say) does not fail it."""
    with open_workspace(args) as ctx:
        audit = ctx.audit_reproducibility(args.run)
    if args.format == "json":
        output.json(audit.to_dict())
    else:
        _audit_text(audit, output)
    if audit.missing:
        names = ", ".join(dict.fromkeys(check.name for check in audit.missing))
        count = len(audit.missing)
        raise CommandError(
            f"{audit.run_id} cannot be re-run as captured: "
            f"{count} check{'' if count == 1 else 's'} missing ({names})"
        )
    return 0
