"""Captured text made safe for each medium a report is written in, in one place per medium.

Run names, messages, tags and tracebacks are whatever the program captured: `<script>`, a spreadsheet
formula, a terminal escape sequence, a newline that would start a line of its own. Every renderer
writes captured text through one of these, so it reads as the text it was and never as the medium's
own syntax:

- **HTML** (`html_text`): `& < > " '` as entities; newlines and carriage returns as `&#10;` / `&#13;`
  (the page looks the same, and its source has no line that captured text started).
- **Markdown** (`markdown_text`, `markdown_cell`): `& < >` as entities, so no raw tag survives (a
  Markdown renderer passes raw HTML through); `\\`, `[` and `]` backslash-escaped, so captured text
  cannot make a link or an image that fetches something; line breaks as `<br>`, so it cannot start
  a heading, a list or a table row; in table cells `|` escaped too.
- **CSV** (`csv_cell`): a text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
  gets a leading `'` (OWASP's advice against formula injection), unless it is a plain number
  (`-0.5`, `+3`, `1e-9`), which a spreadsheet reads as a number and never runs. Numbers stay numbers.
- **Both HTML and Markdown** show the other control characters (C0 but tab, line feed and carriage
  return; DEL; C1) as visible `\\x1b`-style text: they have no place in a page, and a terminal
  showing the file would act on them.
"""

from __future__ import annotations

import re
from html import escape

__all__ = ["csv_cell", "html_text", "markdown_cell", "markdown_text"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _visible(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group(0)):02x}"


def _without_controls(text: str) -> str:
    return text if text.isprintable() else _CONTROL.sub(_visible, text)


_HTML_BREAKS = str.maketrans({"\n": "&#10;", "\r": "&#13;"})


def html_text(text: str) -> str:
    """`text` as HTML element or attribute text."""
    return escape(_without_controls(text), quote=True).translate(_HTML_BREAKS)


_MARKDOWN = {
    "\\": "\\\\",
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "[": "\\[",
    "]": "\\]",
    "\n": "<br>",
    "\r": "<br>",
}
_MARKDOWN_TEXT = str.maketrans(_MARKDOWN)
_MARKDOWN_CELL = str.maketrans({**_MARKDOWN, "|": "\\|"})


def markdown_text(text: str) -> str:
    """`text` as inline Markdown (a heading, a paragraph): it renders as itself, on its own line."""
    return _without_controls(text.replace("\r\n", "\n")).translate(_MARKDOWN_TEXT)


def markdown_cell(text: str) -> str:
    """`text` as the content of a Markdown table cell."""
    return _without_controls(text.replace("\r\n", "\n")).translate(_MARKDOWN_CELL)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(text: str) -> str:
    """`text` as a CSV cell a spreadsheet shows and never evaluates."""
    if text.startswith(_FORMULA_STARTS) and _PLAIN_NUMBER.fullmatch(text) is None:
        return "'" + text
    return text
