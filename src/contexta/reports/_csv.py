"""A report's tables as CSV: one block per section that has a table (a row holding the section title,
the header row, the data rows), blocks separated by an empty line.

A text cell that a spreadsheet would run as a formula starts with `'` (see `_escaping.py`), and a cell
holding a line break of either kind is quoted, so the text parses back with `csv.reader`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from contexta.reports._cells import program_cell
from contexta.reports._escaping import csv_cell
from contexta.reports._sections import ReportSection

__all__ = ["render_csv"]


def _csv_lines(rows: list[list[str]]) -> str:
    """`rows` as CSV lines ending in `\\n`. The writer quotes only cells holding a character of its
    line terminator, so it is given `\\r\\n` (a lone carriage return in a cell, left unquoted, would
    make the file unreadable) and each record's terminator is then written as `\\n`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    lines = []
    for row in rows:
        writer.writerow(row)
        lines.append(buffer.getvalue()[:-2])
        buffer.seek(0)
        buffer.truncate()
    return "".join(line + "\n" for line in lines)


def render_csv(sections: Sequence[ReportSection]) -> str:
    """Every table of `sections` as CSV blocks."""
    blocks = [
        [
            [csv_cell(section.title)],
            [csv_cell(column) for column in section.table.columns],
            *([program_cell(cell) for cell in row] for row in section.table.rows),
        ]
        for section in sections
        if section.table is not None
    ]
    return "\n".join(_csv_lines(rows) for rows in blocks)
