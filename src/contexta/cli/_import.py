"""`contexta import mlflow SOURCE` and `contexta import tensorboard LOGDIR`: history from other trackers.

The work is `contexta._imports`; this module parses, shows a progress bar on stderr (only when stderr
is a terminal, or with --progress) and prints what was imported. Importing twice is safe: runs
already imported are skipped. A run whose source changed since it was imported is reported and left
alone (exit 1); `contexta delete RUN --yes` and importing again replaces it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from contexta.cli._output import Output

if TYPE_CHECKING:
    from contexta._imports import ImportReport
    from contexta._imports._progress import ProgressBar

__all__ = ["IMPORT_SOURCES", "import_command"]


# (kind, summary, what PATH is): the sources `contexta import` reads.
IMPORT_SOURCES = (
    (
        "mlflow",
        "import runs, params, tags, metric histories and artifact files from MLflow",
        "an mlruns directory, sqlite:///path/mlflow.db or postgresql://...",
    ),
    (
        "tensorboard",
        "import scalars from TensorBoard event files (one run per event directory)",
        "the log directory TensorBoard reads",
    ),
)


def import_command(args: argparse.Namespace, output: Output) -> int:
    """Run `contexta import SOURCE_KIND PATH`."""
    from contexta._imports import import_mlflow, import_tensorboard
    from contexta._imports._progress import ProgressBar

    config = {
        "project_name": "default",
        "workspace": {"root_path": args.workspace},
    }
    bar: ProgressBar | None = None
    enabled = bool(args.progress) or _is_terminal(output.stderr)

    def progress(unit: str, count: int) -> None:
        nonlocal bar
        if bar is None:
            bar = ProgressBar(output.stderr, count, unit, enabled=enabled)
        else:
            bar.advance(count)

    importer = import_mlflow if args.source_kind == "mlflow" else import_tensorboard
    try:
        report = importer(args.path, config=config, project=args.project, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if args.format == "json":
        output.json({**report.to_dict(), "workspace": str(args.workspace)})
    else:
        output.lines(_summary(report, args))
    if report.conflicting_runs:
        output.error(
            f"{len(report.conflicting_runs)} run(s) changed in the source since they were imported and were "
            f"left as they are: {', '.join(report.conflicting_runs)}. To import them again, "
            "`contexta delete RUN --yes` each, then run this import again."
        )
        return 1
    return 0


def _summary(report: ImportReport, args: argparse.Namespace) -> list[str]:
    lines = [
        f"Imported {len(report.imported_runs)} run(s) from {args.source_kind} {args.path} "
        f"into {args.workspace}: "
        f"{report.points:,} metric points, {report.artifacts} artifact file(s); "
        f"{len(report.skipped_runs)} run(s) were imported already (skipped)."
    ]
    lines += [f"  {ref}" for ref in report.imported_runs]
    if report.torn_records:
        lines.append(
            f"Skipped a torn last record in {report.torn_records} event file(s) (a writer stopped "
            "mid-record; TensorBoard skips it too)."
        )
    for source_key, key in sorted(report.renamed_keys.items()):
        lines.append(f"Metric {source_key!r} is stored as {key!r} (Contexta keys allow A-Z a-z 0-9 _ . / -).")
    return lines


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False
