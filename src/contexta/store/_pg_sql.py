"""The store's SQL, written once for SQLite, as PostgreSQL runs it.

Every query of the store and the query package is plain SQL that SQLite and PostgreSQL mostly share.
Where they differ, the difference is either absorbed by functions the PostgreSQL schema defines under
SQLite's names (`json_patch`, `instr`, `total`, two-argument `min`/`max`; see `_pg_schema.py`), or
rewritten here, once per distinct statement (cached):

- parameters: `?` and SQLite's numbered `?N` become psycopg's `%s`, with the order in which to pass
  the caller's parameters (a numbered parameter may appear several times); a literal `%` is doubled;
- `INSERT OR IGNORE INTO t ...` becomes `INSERT INTO t ... ON CONFLICT DO NOTHING`;
- `BEGIN IMMEDIATE` becomes `BEGIN` (PostgreSQL's row locks make the early write lock unnecessary),
  and a plain `BEGIN` (a consistent read) becomes a repeatable-read, read-only transaction;
- `json_each(` becomes the schema's `contexta_json_each(`, as PostgreSQL has a `json_each` of its
  own; SQLite's `->> '$.a.b'` becomes jsonb's `#>> '{a,b}'`;
- `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` becomes the same text from the server's clock.

Text inside quotes is never rewritten (only `%` is doubled there, as psycopg requires).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

__all__ = ["PostgresStatement", "to_postgres"]


class PostgresStatement(NamedTuple):
    """A statement as psycopg takes it, and which of the caller's parameters fill its `%s`, in order
    (None: the parameters as given)."""

    text: str
    order: tuple[int, ...] | None


_NOW_UTC = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
_NOW_UTC_PG = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
_FUNCTION_CALL = re.compile(r"\bjson_each\s*\(", re.IGNORECASE)
_INSERT_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_BEGIN_IMMEDIATE = re.compile(r"^\s*BEGIN\s+IMMEDIATE\s*$", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_NUMBERED = re.compile(r"\?(\d+)")
# `document ->> '$.payload.level'`: SQLite's operator takes a JSON path, PostgreSQL's a key.
_JSON_PATH_OPERATOR = re.compile(r"([\w.]+)\s*->>\s*'\$((?:\.\w+)+)'")


@lru_cache(maxsize=4096)
def to_postgres(sql: str) -> PostgresStatement:
    """`sql`, written for SQLite, as a statement psycopg sends to PostgreSQL."""
    if _BEGIN_IMMEDIATE.match(sql):
        return PostgresStatement("BEGIN", None)
    if sql.strip().upper() == "BEGIN":
        # Only consistent reads begin this way (writes go through `transaction()`): a SQLite read
        # transaction sees one state of the file throughout, which PostgreSQL calls repeatable read.
        return PostgresStatement("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", None)
    sql = sql.replace(_NOW_UTC, _NOW_UTC_PG)
    sql = _JSON_PATH_OPERATOR.sub(
        lambda match: f"(contexta_jsonb({match[1]}) #>> '{{{','.join(match[2][1:].split('.'))}}}')", sql
    )
    ignore_conflicts = False
    pieces: list[str] = []
    order: list[int] = []
    numbered = False
    largest = 0  # SQLite numbers a plain `?` one past the largest number used before it
    for quoted, text in _split_quotes(sql):
        if quoted:
            pieces.append(text.replace("%", "%%"))
            continue
        text = text.replace("%", "%%")
        if _INSERT_OR_IGNORE.search(text):
            text = _INSERT_OR_IGNORE.sub("INSERT INTO", text)
            ignore_conflicts = True
        text = _FUNCTION_CALL.sub("contexta_json_each(", text)
        out: list[str] = []
        position = 0
        while (mark := text.find("?", position)) >= 0:
            out.append(text[position:mark])
            given = _NUMBERED.match(text, mark)
            if given is not None:
                numbered = True
                number = int(given[1])
                position = given.end()
            else:
                number = largest + 1
                position = mark + 1
            largest = max(largest, number)
            order.append(number - 1)
            out.append("%s")
        out.append(text[position:])
        pieces.append("".join(out))
    text = "".join(pieces)
    text = _qualify_update(text)
    if ignore_conflicts:
        returning = _RETURNING.search(text)
        if returning is None:
            text = text.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
        else:
            text = f"{text[: returning.start()]}ON CONFLICT DO NOTHING {text[returning.start() :]}"
    return PostgresStatement(text, tuple(order) if numbered else None)


_INSERT_TARGET = re.compile(r"\bINSERT\s+INTO\s+(\w+)", re.IGNORECASE)
_DO_UPDATE_SET = re.compile(r"\bDO\s+UPDATE\s+SET\b", re.IGNORECASE)
_IDENTIFIER = re.compile(r"(?<![\w.%])([A-Za-z_]\w*)\b(?!\s*\()")
_ASSIGNED = re.compile(r"(?:^|,)\s*$")


@lru_cache(maxsize=1)
def _columns() -> dict[str, frozenset[str]]:
    from contexta.store._pg_schema import table_columns

    return table_columns()


def _qualify_update(text: str) -> str:
    """In `INSERT INTO t ... ON CONFLICT ... DO UPDATE SET a = f(a, excluded.a)`, SQLite reads a bare
    `a` in an expression as the stored row's; PostgreSQL calls it ambiguous (`excluded` has one
    too). Qualify each bare column of `t` in the expressions (not the assigned names) as `t.a`."""
    target = _INSERT_TARGET.search(text)
    update = _DO_UPDATE_SET.search(text)
    if target is None or update is None:
        return text
    table = target[1]
    columns = _columns().get(table)
    if not columns:
        return text
    head, tail = text[: update.end()], text[update.end() :]
    out: list[str] = []
    for quoted, piece in _split_quotes(tail):
        if quoted:
            out.append(piece)
            continue
        pieces: list[str] = []
        last = 0
        for match in _IDENTIFIER.finditer(piece):
            name = match[1]
            if name not in columns:
                continue
            before = "".join(out) + piece[: match.start()]
            after = piece[match.end() :]
            if _ASSIGNED.search(before) and re.match(r"\s*=(?!=)", after):
                continue  # the column being assigned: PostgreSQL wants it bare
            pieces.append(piece[last : match.start()] + f"{table}.{name}")
            last = match.end()
        pieces.append(piece[last:])
        out.append("".join(pieces))
    return head + "".join(out)


def _split_quotes(sql: str) -> list[tuple[bool, str]]:
    """`sql` cut into (inside quotes?, text) pieces; single-quoted strings and double-quoted names are
    the quoted pieces, quotes included (a doubled quote inside stays inside)."""
    pieces: list[tuple[bool, str]] = []
    start = 0
    index = 0
    length = len(sql)
    while index < length:
        character = sql[index]
        if character in ("'", '"'):
            if index > start:
                pieces.append((False, sql[start:index]))
            end = index + 1
            while end < length:
                if sql[end] == character:
                    if end + 1 < length and sql[end + 1] == character:
                        end += 2
                        continue
                    break
                end += 1
            pieces.append((True, sql[index : end + 1]))
            start = index = end + 1
        else:
            index += 1
    if start < length:
        pieces.append((False, sql[start:]))
    return pieces
