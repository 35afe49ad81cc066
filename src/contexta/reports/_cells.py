"""Report cells: what a table cell may hold, and how it reads in each rendering (shortened for people
in Markdown, HTML and the terminal; whole for programs in CSV; JSON-ready).

Every renderer formats cells through these, so a number or an empty cell reads the same in all of them.
"""

from __future__ import annotations

from contexta.errors import ValidationError
from contexta.reports._escaping import csv_cell

__all__ = ["Cell", "check_cell", "format_number", "json_cell", "program_cell", "text_cell"]

Cell = str | int | float | bool | None


def check_cell(value: object) -> Cell:
    """`value` if a cell may hold it; `ValidationError(report_cell_invalid)` otherwise."""
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    raise ValidationError(
        f"a report cell must be a string, number, bool or None, got {type(value).__name__}; "
        "format it as text first",
        code="report_cell_invalid",
    )


def format_number(value: float) -> str:
    """Six significant digits; NaN and the infinities as `nan`, `inf`, `-inf`."""
    return f"{value:.6g}"


def text_cell(value: Cell) -> str:
    """A cell for people: numbers shortened, nothing shown as `-`."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def program_cell(value: Cell) -> str:
    """A cell for programs: nothing is empty, numbers keep every digit, and text never runs as a
    spreadsheet formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return csv_cell(value)
    return str(value)


def json_cell(value: Cell) -> Cell:
    """A cell as JSON holds it: a NaN or infinite float becomes the string "nan", "inf" or "-inf"
    (as Markdown and CSV show it), not null, so a diverged value is not read as missing."""
    if type(value) is float and value - value != 0:
        return format_number(value)
    return value
