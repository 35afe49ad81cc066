"""Captured text made safe for a terminal: what a command prints can neither drive the terminal nor
forge a line.

A run name, a message or a traceback may hold an escape sequence (`\\x1b[31m` colours the rest of the
screen, `\\x1b]52;...` writes the clipboard, `\\x1b[2J` clears it), a carriage return or backspaces
that overwrite what came before, a newline that starts a line the command never wrote, or a
bidirectional override that shows text in another order than it is. Every line a command prints goes
through `terminal_safe` (the table and field renderers, and `Output.line` / `lines` / `error`), which
shows each such character as a visible escape: `\\n`, `\\r`, `\\t`, `\\x1b`, `\\x9b`, `\\u202e`.
Backslashes are left as they are (a Windows path reads as itself).

Documents keep their own lines (`terminal_document`): Markdown and HTML are escaped line by line
(their renderers already write captured line breaks as `<br>` / `&#10;`); a CSV document is re-written
with each cell made safe, so one record stays one line and the CSV stays parseable; JSON (here and in
every `--format json` output) writes the characters orjson leaves raw (DEL, C1, the separators and
bidirectional controls) as `\\u` escapes, so it stays the same JSON.
"""

from __future__ import annotations

import csv
import io
import re

__all__ = ["terminal_document", "terminal_json", "terminal_safe"]

# C0 (newline, tab and carriage return included), DEL, C1, the line and paragraph separators, and the
# bidirectional formatting characters.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_DOCUMENT = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_UNSAFE_IN_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """`text` as one line a terminal shows as it is: control characters, line breaks and
    bidirectional controls as visible escapes."""
    if text.isprintable():  # the common case, checked in C
        return text
    return _UNSAFE.sub(_visible, text)


def _block_safe(text: str) -> str:
    """Like `terminal_safe`, but the text's own line feeds are kept."""
    if text.isascii() and text.replace("\n", "").isprintable():
        return text
    return _UNSAFE_IN_DOCUMENT.sub(_visible, text)


def terminal_json(text: str) -> str:
    """JSON text (as orjson writes it, with no raw C0 character) with the characters a terminal
    acts on written as `\\u` escapes: the same JSON value."""
    if text.isascii():
        return text if "\x7f" not in text else text.replace("\x7f", "\\u007f")
    return _UNSAFE_IN_JSON.sub(lambda match: f"\\u{ord(match.group(0)):04x}", text)


def _csv_safe(text: str) -> str:
    rows = csv.reader(io.StringIO(text, newline=""))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([terminal_safe(cell) for cell in row] for row in rows)
    return buffer.getvalue()


def terminal_document(text: str, document_format: str) -> str:
    """A rendered document (`md`, `html`, `json` or `csv`) ready to print: its own lines kept,
    nothing in it able to act on the terminal or start a line of its own."""
    if document_format == "json":
        return terminal_json(text)
    if document_format == "csv":
        # A cell holds a line break or a terminal control only if it is quoted or the text has one.
        safe = '"' not in text and _UNSAFE_IN_DOCUMENT.search(text) is None
        return text if safe else _csv_safe(text)
    return _block_safe(text)
