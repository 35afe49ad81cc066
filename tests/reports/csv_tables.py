"""A report's tidy CSV (`section,row,column,value`) turned back into its tables, for tests to read."""

from __future__ import annotations

import csv
import io


def csv_tables(text: str) -> dict[str, list[list[str]]]:
    """section -> its rows (each the row's values in column order), in the order they were written."""
    reader = csv.reader(io.StringIO(text, newline=""))
    assert next(reader) == ["section", "row", "column", "value"]
    tables: dict[str, dict[str, list[str]]] = {}
    for section, row, _, value in reader:
        tables.setdefault(section, {}).setdefault(row, []).append(value)
    return {section: list(rows.values()) for section, rows in tables.items()}
