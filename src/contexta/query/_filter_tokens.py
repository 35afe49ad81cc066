"""The run filter language's tokens, and the error that points at one.

A filter, a sort list and a column list are typed by people, often on a command line: when one does
not parse, the error names the column and draws a caret under the token at fault, so the fix is
obvious without counting characters.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from contexta.errors import ValidationError

__all__ = ["OPERATORS", "Token", "TokenKind", "pointed_error", "tokenize"]

TokenKind = Literal["word", "string", "operator", "open", "close", "end"]

# Longest first, so `<=` is not read as `<` then `=`; `==` is accepted for `=`.
OPERATORS = ("<=", ">=", "!=", "==", "=", "<", ">", "~")
_STOPS = frozenset(" \t\r\n()=!<>~\"'")


class Token(NamedTuple):
    """One token: `text` as written (a string's without its quotes and escapes), and where it is."""

    kind: TokenKind
    text: str
    start: int
    end: int


def pointed_error(
    source: str, start: int, end: int, problem: str, *, what: str = "filter", code: str = "filter_invalid"
) -> ValidationError:
    """`ValidationError(code)` whose message says what is wrong at which column of `source`, then
    shows `source` with a caret under characters `start:end`."""
    shown = "".join(" " if char in "\t\r\n" else char for char in source)
    start = min(max(start, 0), len(shown))
    width = max(end - start, 1)
    message = f"{what} error at column {start + 1}: {problem}\n  {shown}\n  {' ' * start}{'^' * width}"
    return ValidationError(
        message, code=code, details={what: source, "column": start + 1, "problem": problem}
    )


def _string(source: str, start: int, what: str, code: str) -> Token:
    """The quoted string opening at `start`; a backslash takes the next character as it is."""
    quote, index, text = source[start], start + 1, []
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source):
            text.append(source[index + 1])
            index += 2
            continue
        if char == quote:
            return Token("string", "".join(text), start, index + 1)
        text.append(char)
        index += 1
    raise pointed_error(source, start, start + 1, f"unclosed {quote}", what=what, code=code)


def _word(source: str, start: int, what: str, code: str) -> Token:
    """A run of characters up to a space, parenthesis, operator or quote; inside backquotes anything
    goes (metrics.`macro.f1`), and the backquotes stay in the word for the field reader."""
    index = start
    while index < len(source) and source[index] not in _STOPS:
        if source[index] == "`":
            close = source.find("`", index + 1)
            if close < 0:
                raise pointed_error(source, index, index + 1, "unclosed `", what=what, code=code)
            index = close
        index += 1
    return Token("word", source[start:index], start, index)


def tokenize(source: str, *, what: str = "filter", code: str = "filter_invalid") -> list[Token]:
    """The tokens of `source`, ending with an `end` token; `ValidationError(code)` at a character
    that cannot start one (a lone `!`) or an unclosed quote."""
    tokens: list[Token] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char.isspace():
            index += 1
            continue
        if char in "()":
            tokens.append(Token("open" if char == "(" else "close", char, index, index + 1))
            index += 1
            continue
        operator = next((op for op in OPERATORS if source.startswith(op, index)), None)
        if operator is not None:
            tokens.append(
                Token("operator", "=" if operator == "==" else operator, index, index + len(operator))
            )
            index += len(operator)
            continue
        if char == "!":
            raise pointed_error(source, index, index + 1, "'!' must be followed by '='", what=what, code=code)
        token = _string(source, index, what, code) if char in "\"'" else _word(source, index, what, code)
        tokens.append(token)
        index = token.end
    tokens.append(Token("end", "", len(source), len(source)))
    return tokens
