"""Reading a run filter, sort list or column list into what the search evaluates.

Grammar (keywords in any case; `not` binds tighter than `and`, `and` tighter than `or`):

    filter     := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" or ")" | comparison
    comparison := field [operator value]        -- a field alone tests that the run has it
    field      := NAME | ("min" | "max") "(" metrics.KEY ")"
    operator   := = | != | < | <= | > | >= | ~  (`~`: the text contains the value)
    value      := "string" | 'string' | number | bare word (status = completed)

Literals are checked against their field here, where the error can point at them: `started_at` takes
an ISO date or date-time (a date is its midnight UTC, a date-time without an offset is UTC),
`duration` a number of seconds, `status` one of the run states.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

import orjson

from contexta.contract import STATUSES
from contexta.errors import ValidationError
from contexta.query._filter_tokens import Token, pointed_error, tokenize
from contexta.query._run_fields import Aggregate, RunField, read_field, split_list

__all__ = [
    "AllOf",
    "AnyOf",
    "Comparison",
    "FilterNode",
    "Negation",
    "RunFilter",
    "SortKey",
    "parse_columns",
    "parse_run_filter",
    "parse_sort",
    "tag_filter",
]

# The most columns one runs table shows (see parse_columns).
MAX_COLUMNS = 500

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_KEYWORDS = ("and", "or", "not")
# How deep parentheses and `not`s may nest: far more than anyone writes, and well inside Python's
# recursion limit for the parser and the evaluator.
MAX_NESTING = 100


@dataclass(frozen=True, slots=True)
class Comparison:
    """`field operator value`; `operator` None tests that the run has a value for `field`. `value` is
    the literal as read: a number, a string, or (against started_at) an aware datetime."""

    field: RunField
    operator: str | None = None
    value: float | int | str | datetime | None = None


@dataclass(frozen=True, slots=True)
class Negation:
    operand: FilterNode


@dataclass(frozen=True, slots=True)
class AllOf:
    operands: tuple[FilterNode, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    operands: tuple[FilterNode, ...]


FilterNode: TypeAlias = Comparison | Negation | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class RunFilter:
    """A parsed filter: `text` as given (or built), `node` its tree. Parse once with
    `parse_run_filter`, pass it to `list_runs(filter=...)` as often as needed; `&` joins two."""

    text: str
    node: FilterNode

    def __and__(self, other: RunFilter) -> RunFilter:
        # Kept flat: filters joined one at a time (`reduce(operator.and_, ...)`) make one `and` of
        # them all, not a tree as deep as their number.
        left = self.node.operands if isinstance(self.node, AllOf) else (self.node,)
        right = other.node.operands if isinstance(other.node, AllOf) else (other.node,)
        text = self.text if isinstance(self.node, AllOf) else f"({self.text})"
        return RunFilter(f"{text} and ({other.text})", AllOf((*left, *right)))

    def fields(self) -> list[RunField]:
        """Every field the filter reads, once each, in the order written."""
        return list(dict.fromkeys(_fields(self.node)))


def _fields(node: FilterNode) -> Iterator[RunField]:
    if isinstance(node, Comparison):
        yield node.field
    elif isinstance(node, Negation):
        yield from _fields(node.operand)
    else:
        for operand in node.operands:
            yield from _fields(operand)


def _time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class _Parser:
    def __init__(self, source: str, tokens: list[Token]):
        self.source = source
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def fail(self, token: Token, problem: str) -> Exception:
        return pointed_error(self.source, token.start, token.end, problem)

    def current(self) -> Token:
        """The next token (a method, not a property: it changes as the parser advances)."""
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.current()
        if token.kind == "word" and token.text.lower() == word:
            self.index += 1
            return True
        return False

    def parse(self) -> FilterNode:
        if self.current().kind == "end":
            raise self.fail(self.current(), "empty filter; write a comparison such as metrics.accuracy > 0.9")
        node = self.disjunction()
        token = self.current()
        if token.kind != "end":
            raise self.fail(token, f"expected 'and', 'or' or the end, got {token.text!r}")
        return node

    def disjunction(self) -> FilterNode:
        operands = [self.conjunction()]
        while self.keyword("or"):
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def conjunction(self) -> FilterNode:
        operands = [self.unary()]
        while self.keyword("and"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else AllOf(tuple(operands))

    def unary(self) -> FilterNode:
        token = self.current()
        if token.kind != "open" and not (token.kind == "word" and token.text.lower() == "not"):
            return self.comparison()
        if self.depth == MAX_NESTING:
            raise self.fail(token, f"parentheses and 'not' nested more than {MAX_NESTING} deep")
        self.depth += 1
        self.advance()
        if token.kind == "word":  # not
            node: FilterNode = Negation(self.unary())
        else:
            node = self.disjunction()
            if self.current().kind != "close":
                raise self.fail(token, "this '(' is never closed")
            self.advance()
        self.depth -= 1
        return node

    def field(self) -> RunField:
        token = self.advance()
        if token.kind == "word" and token.text.lower() in _KEYWORDS:
            raise self.fail(token, f"expected a field before {token.text!r}")
        aggregate: Aggregate = "latest"
        if token.kind == "word" and token.text.lower() in ("min", "max") and self.current().kind == "open":
            aggregate = "min" if token.text.lower() == "min" else "max"
            self.advance()
            inner = self.advance()
            field = read_field(self.source, inner, aggregate)
            if self.current().kind != "close":
                raise self.fail(self.current(), f"expected ')' to close {aggregate}(")
            self.advance()
            return field
        return read_field(self.source, token)

    def comparison(self) -> Comparison:
        field = self.field()
        if self.current().kind != "operator":
            return Comparison(field)
        operator = self.advance().text
        token = self.advance()
        if token.kind not in ("word", "string"):
            raise self.fail(token, f"expected a value after {operator!r}")
        return Comparison(field, operator, self.literal(field, operator, token))

    def literal(self, field: RunField, operator: str, token: Token) -> float | int | str | datetime:
        text = token.text
        if operator == "~":  # contains: the value's text as written
            return text
        if field.kind == "started_at":
            moment = _time(text)
            if moment is None:
                raise self.fail(token, f"started_at compares with an ISO date or date-time, got {text!r}")
            return moment
        number: float | int | None = None
        if token.kind == "word" and _NUMBER.fullmatch(text):
            number = float(text) if any(char in text for char in ".eE") else int(text)
        if field.kind == "duration" and number is None:
            raise self.fail(token, f"duration compares with a number of seconds, got {text!r}")
        if field.kind == "status" and operator in ("=", "!=") and text not in STATUSES:
            raise self.fail(token, f"status is one of {', '.join(STATUSES)}, got {text!r}")
        return text if number is None else number


def parse_run_filter(text: str) -> RunFilter:
    """`text` read as a run filter (see the module docstring for the language);
    `ValidationError(filter_invalid)` pointing at the first thing wrong in it."""
    if not isinstance(text, str):
        raise pointed_error(repr(text), 0, 0, f"a filter is a string, got {type(text).__name__}")
    return RunFilter(text, _Parser(text, tokenize(text)).parse())


@dataclass(frozen=True, slots=True)
class SortKey:
    """One sort field, and whether it sorts largest first."""

    field: RunField
    descending: bool = False


def _item_field(source: str, text: str, start: int, what: str, code: str) -> RunField:
    """The one field `text` (found at `start` of `source`) names: a plain name or min/max(...)."""
    tokens = [
        token._replace(start=token.start + start, end=token.end + start)
        for token in tokenize(text, what=what, code=code)
    ]
    first = tokens[0]
    if first.kind == "word" and first.text.lower() in ("min", "max") and tokens[1].kind == "open":
        aggregate: Aggregate = "min" if first.text.lower() == "min" else "max"
        field = read_field(source, tokens[2], aggregate, what=what, code=code)
        rest = tokens[3:]
        if rest[0].kind != "close":
            raise pointed_error(
                source,
                rest[0].start,
                rest[0].end,
                f"expected ')' to close {aggregate}(",
                what=what,
                code=code,
            )
        rest = rest[1:]
    else:
        field = read_field(source, first, what=what, code=code)
        rest = tokens[1:]
    if rest[0].kind != "end":
        raise pointed_error(
            source,
            rest[0].start,
            rest[-1].end,
            "one field per item; separate them with commas",
            what=what,
            code=code,
        )
    return field


def parse_sort(text: str) -> list[SortKey]:
    """`text` as a sort list: fields separated by commas, each with `-` before it to put the largest
    first; `ValidationError(sort_invalid)` pointing at the first thing wrong."""
    keys = []
    for item, start, _ in split_list(text, what="sort", code="sort_invalid"):
        descending = item.startswith("-")
        body = item[1:].lstrip() if descending else item
        offset = start + (len(item) - len(body))
        keys.append(SortKey(_item_field(text, body, offset, "sort", "sort_invalid"), descending))
    return keys


def parse_columns(text: str) -> list[tuple[str, RunField]]:
    """`text` as a column list: fields separated by commas, each with the name it was given;
    `ValidationError(columns_invalid)` pointing at the first thing wrong, or saying there are more
    than `MAX_COLUMNS` (each is a column of one SQL result, which SQLite caps at 2,000)."""
    items = split_list(text, what="columns", code="columns_invalid")
    if len(items) > MAX_COLUMNS:
        raise ValidationError(
            f"at most {MAX_COLUMNS} columns can be shown at once, got {len(items)}: choose fewer",
            code="columns_invalid",
            details={"columns": len(items), "limit": MAX_COLUMNS},
        )
    return [(item, _item_field(text, item, start, "columns", "columns_invalid")) for item, start, _ in items]


def tag_filter(name: str, value: str | None = None) -> RunFilter:
    """The filter `tags.NAME = VALUE` (a tag given as text still equals its number: "3" = 3), or
    with no value `tags.NAME` (the run has the tag), built without quoting NAME or VALUE."""
    if not isinstance(name, str) or not name:
        raise ValidationError(f"a tag name is a non-empty string, got {name!r}", code="filter_invalid")
    field = RunField("tag", (name,))
    shown = "tags.`" + name + "`"
    if value is None:
        return RunFilter(shown, Comparison(field))
    return RunFilter(f"{shown} = {orjson.dumps(value).decode()}", Comparison(field, "=", value))
