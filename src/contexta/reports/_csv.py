"""A report's tables as one tidy CSV table: one record per table cell, `section,row,column,value`.

A CSV file holds one table, and every CSV reader (`csv.reader`, `pandas.read_csv`, a spreadsheet)
expects that; a report has a table per section, each with its own columns, so each cell becomes a
record naming its section, its row (from 1, within its section's table) and its column. One section's
table comes back with a pivot (`frame[frame.section == "Metric Deltas"].pivot(index="row",
columns="column", values="value")`). A section without a table, or whose table has no rows, has no
cells and so no records (the JSON rendering keeps every section and its columns).

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

__all__ = ["CSV_COLUMNS", "render_csv"]

CSV_COLUMNS = ("section", "row", "column", "value")


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
    """Every table cell of `sections` as a `section,row,column,value` record, under one header."""
    records = [list(CSV_COLUMNS)]
    for section in sections:
        if section.table is None:
            continue
        title = csv_cell(section.title)
        columns = [csv_cell(column) for column in section.table.columns]
        for number, row in enumerate(section.table.rows, start=1):
            records += [
                [title, str(number), column, program_cell(cell)]
                for column, cell in zip(columns, row, strict=True)
            ]
    return _csv_lines(records)
