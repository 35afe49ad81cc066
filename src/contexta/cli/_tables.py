"""Terminal tables and field lists that fit the terminal: long cells are cut with `…` (or wrapped,
for columns of prose), numbers are right-aligned, and width is counted the way a terminal draws it
(East Asian wide characters take two columns, combining marks none)."""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from contexta.cli._terminal import terminal_safe

__all__ = ["Column", "cut", "cut_left", "display_width", "render_fields", "render_table"]

_GAP = "  "
_MIN_WIDTH = 4  # a cut column still shows a few characters and its `…`
_MIN_WRAP_WIDTH = 24  # a wrapped column of prose stays readable, and takes at least half the table


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its title, and how it gives way when the table is too wide.

    Numbers are right-aligned; `keep` columns (numbers, statuses, instants) are cut only when cutting
    the others is not enough; `wrap` columns (prose) wrap onto more lines instead of being cut;
    `keep_end` columns (refs, whose end is their most specific part) are cut from the left.
    """

    title: str
    numeric: bool = False
    keep: bool = False
    wrap: bool = False
    keep_end: bool = False

    @property
    def kept(self) -> bool:
        return (self.keep or self.numeric) and not self.wrap


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """How many terminal columns `text` takes."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def _single_line(text: str) -> str:
    """Control characters (newlines, tabs, escape sequences) shown escaped: one cell, one line, and
    its width counted as it will be shown."""
    return terminal_safe(text)


def cut(text: str, width: int) -> str:
    """`text` cut to `width` columns, ending in `…` when something was cut."""
    if display_width(text) <= width:
        return text
    if width <= 0:
        return ""
    kept, used = [], 0
    for char in text:
        char_width = _char_width(char)
        if used + char_width > width - 1:
            break
        kept.append(char)
        used += char_width
    return "".join(kept) + "…"


def cut_left(text: str, width: int) -> str:
    """`text` cut to `width` columns from the left (`…` first): the end of a ref is its most specific
    part."""
    if display_width(text) <= width:
        return text
    return cut(text[::-1], width)[::-1]


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill


def _water_fill(natural: list[int], available: int) -> list[int]:
    """Widths that fit `available`: the widest columns are cut first, down to a common cap."""
    if not natural or sum(natural) <= available:
        return list(natural)
    low, high = _MIN_WIDTH, max(natural)
    while low < high:  # the largest cap at which everything fits
        cap = (low + high + 1) // 2
        if sum(min(width, cap) for width in natural) <= available:
            low = cap
        else:
            high = cap - 1
    widths = [min(width, low) for width in natural]
    spare = available - sum(widths)
    for index, width in enumerate(natural):  # hand out what the cap left over, left to right
        if spare <= 0:
            break
        if width > widths[index]:
            grant = min(spare, width - widths[index])
            widths[index] += grant
            spare -= grant
    return widths


def _widths(columns: Sequence[Column], natural: list[int], available: int) -> list[int]:
    """Each column's width: kept columns at their natural width, prose at a readable minimum, the rest
    cut to fit; if that is not enough, kept columns are cut too; prose then takes what is left."""
    widths = list(natural)
    wrapped = [index for index, column in enumerate(columns) if column.wrap]
    for index in wrapped:
        widths[index] = min(natural[index], max(_MIN_WRAP_WIDTH, available // (2 * len(wrapped))))
    room = available - sum(widths[index] for index in wrapped)
    kept = [index for index, column in enumerate(columns) if column.kept]
    cuttable = [index for index, column in enumerate(columns) if not column.kept and not column.wrap]
    kept_width = sum(natural[index] for index in kept)
    if cuttable and room - kept_width >= _MIN_WIDTH * len(cuttable):
        shrinking, room = cuttable, room - kept_width
    else:
        shrinking = kept + cuttable
    fitted = _water_fill([natural[index] for index in shrinking], room)
    for index, width in zip(shrinking, fitted, strict=True):
        widths[index] = width
    spare = available - sum(widths)
    for index in wrapped:
        grant = max(min(spare, natural[index] - widths[index]), 0)
        widths[index] += grant
        spare -= grant
    return widths


def _cell_lines(text: str, width: int, column: Column) -> list[str]:
    if column.wrap and display_width(text) > width:
        return [cut(part, width) for part in textwrap.wrap(text, width, break_on_hyphens=False)] or [""]
    return [cut_left(text, width) if column.keep_end else cut(text, width)]


def render_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """A header, a rule, and one line per row (more for wrapped cells), each at most `width` columns."""
    cells = [[_single_line(cell) for cell in row] for row in rows]
    natural = [
        max([display_width(column.title), *(display_width(row[index]) for row in cells)])
        for index, column in enumerate(columns)
    ]
    widths = _widths(columns, natural, width - len(_GAP) * (len(columns) - 1))

    def join(parts: list[str]) -> str:
        return cut(_GAP.join(parts).rstrip(), width)

    lines = [
        join(
            [
                _pad(cut(column.title, size), size, column.numeric)
                for column, size in zip(columns, widths, strict=True)
            ]
        ),
        join(["-" * size for size in widths]),
    ]
    for row in cells:
        stacked = [
            _cell_lines(cell, size, column) for cell, size, column in zip(row, widths, columns, strict=True)
        ]
        for depth in range(max(len(parts) for parts in stacked)):
            lines.append(
                join(
                    [
                        _pad(parts[depth] if depth < len(parts) else "", size, column.numeric)
                        for parts, size, column in zip(stacked, widths, columns, strict=True)
                    ]
                )
            )
    return lines


def render_fields(fields: Sequence[tuple[str, str]], width: int, indent: int = 2) -> list[str]:
    """`name  value` lines with the values aligned, each cut to `width` columns."""
    if not fields:
        return []
    name_width = max(display_width(name) for name, _ in fields)
    prefix = " " * indent
    return [
        cut(f"{prefix}{_pad(name, name_width, False)}{_GAP}{_single_line(value)}".rstrip(), width)
        for name, value in fields
    ]
