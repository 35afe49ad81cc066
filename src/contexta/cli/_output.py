"""Where a command's output goes: text or JSON on stdout, one-line failures on stderr.

Everything printed passes through `_terminal.py` here, whatever the command: a line of text with its
control characters and line breaks shown escaped, a document with its own lines kept, JSON with the
characters a terminal acts on as `\\u` escapes."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

from contexta.cli._terminal import terminal_document, terminal_json, terminal_safe

__all__ = ["UNBOUNDED", "CommandError", "Output", "UsageError"]


class CommandError(Exception):
    """A handled failure: the command line prints `contexta: <message>` on stderr and exits 1."""


class UsageError(Exception):
    """Arguments that parse but do not make sense together: reported like argparse's errors (exit 2)."""


# The width of output that goes to no terminal: wider than any line, small enough for arithmetic.
UNBOUNDED = 1 << 30


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real stream
        return False


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(slots=True)
class Output:
    """A command's two streams and the width its text must fit in."""

    stdout: TextIO
    stderr: TextIO
    width: int

    @classmethod
    def for_terminal(cls, stdout: TextIO, stderr: TextIO) -> Output:
        """Output sized to the terminal: `COLUMNS` when set, else the terminal's width; unbounded
        when stdout is no terminal (a pipe, a file), so no cell is cut and `grep` sees every value."""
        if "COLUMNS" not in os.environ and not _is_terminal(stdout):
            return cls(stdout, stderr, UNBOUNDED)
        return cls(stdout, stderr, max(shutil.get_terminal_size().columns, 20))

    def line(self, text: str = "") -> None:
        """One line; a line break or control character inside `text` is shown escaped."""
        self.stdout.write(terminal_safe(text) + "\n")

    def lines(self, texts: list[str]) -> None:
        if texts:
            self.stdout.write("\n".join(terminal_safe(text) for text in texts) + "\n")

    def document(self, text: str, document_format: str) -> None:
        """A rendered document (`md`, `html`, `json` or `csv`) with its own lines, ending in exactly
        the newlines it has (at least one)."""
        text = terminal_document(text, document_format)
        self.stdout.write(text if text.endswith("\n") else text + "\n")

    def json(self, value: Any) -> None:
        """`value` as indented JSON: the whole of stdout for a `--format json` command."""
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()
        self.stdout.write(terminal_json(text) + "\n")

    def json_line(self, value: Any) -> None:
        """`value` as one compact JSON line (JSON Lines, for output that streams)."""
        self.stdout.write(terminal_json(orjson.dumps(value, default=str).decode()) + "\n")

    def flush(self) -> None:
        self.stdout.flush()

    def error(self, message: str) -> None:
        """The one stderr line of a handled failure."""
        self.stderr.write(f"contexta: {_one_line(terminal_safe(message))}\n")
        self.stderr.flush()

    def pointed_error(self, message: str) -> None:
        """A failure whose message is a line and then lines that point into what the user typed (an
        expression and a caret under the fault): the first line as `error` writes it, the rest as
        they are, so the caret stays under its column."""
        first, *pointing = message.split("\n")
        self.stderr.write(f"contexta: {_one_line(terminal_safe(first))}\n")
        self.stderr.writelines(f"{terminal_safe(line)}\n" for line in pointing)
        self.stderr.flush()
