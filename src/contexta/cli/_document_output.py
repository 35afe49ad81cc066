"""Printing or writing a report document, for every command that can give one (`report`, and
`trend` / `alerts` with `--report` or `--output`).

Printed, the document is made safe for a terminal (`_terminal.terminal_document`: a control
character or a line break inside a CSV cell shows as `\\x1b` / `\\n`); written to `--output PATH`, it
is the rendering exactly as it is, and the file's absolute path is printed."""

from __future__ import annotations

import argparse
from pathlib import Path

from contexta.cli._output import Output, UsageError
from contexta.reports import ReportDocument

__all__ = ["REPORT_FORMATS", "document_format", "emit_document", "render_document", "wants_document"]

REPORT_FORMATS = ("md", "html", "json", "csv")


def document_format(requested: str | None, target: Path | None) -> str:
    """The format asked for, else what the output file's suffix says (`report.html`), else Markdown."""
    if requested is not None:
        return requested
    suffix = "" if target is None else target.suffix.lower().lstrip(".")
    suffix = "md" if suffix == "markdown" else "html" if suffix == "htm" else suffix
    return suffix if suffix in REPORT_FORMATS else "md"


def render_document(document: ReportDocument, chosen_format: str) -> str:
    if chosen_format == "html":
        return document.to_html()
    if chosen_format == "json":
        return document.to_json()
    if chosen_format == "csv":
        return document.to_csv()
    return document.to_markdown()


def emit_document(
    document: ReportDocument, requested: str | None, output_path: str | None, output: Output
) -> None:
    """`document` on stdout, or written to `output_path` (whose absolute path is then printed)."""
    target = None if output_path is None else Path(output_path).expanduser()
    chosen = document_format(requested, target)
    text = render_document(document, chosen)
    if target is None:
        output.document(text, chosen)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    output.line(str(target.resolve()))


def wants_document(args: argparse.Namespace) -> bool:
    """Whether the command is to give a report document (`--report` or `--output`); `--format` is
    the terminal view's and cannot be combined with them."""
    wanted = args.report is not None or args.output is not None
    if wanted and args.format is not None:
        raise UsageError(
            "--format chooses the terminal view (text or json); for a document give --report FORMAT"
        )
    return wanted
