"""Finding runs: filter, sort and page them, as run records or as a table of chosen fields.

One pass: the filter and sort are parsed once; the runs are read as columns (`_run_values.py`), with
what SQL can answer handed to it (the project, `status = X` and `name = X` when the whole filter
requires them); each field the filter, the sort or the table names is read once for all runs; the
filter and sort then run in Python over those columns. Only the page asked for becomes records.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Any

from contexta.errors import ValidationError
from contexta.query._bulk import collection_paused
from contexta.query._fetch import fetch_runs
from contexta.query._filter_eval import comparable_column, matching_rows, sorted_rows
from contexta.query._filter_parse import (
    AllOf,
    Comparison,
    FilterNode,
    RunFilter,
    SortKey,
    parse_columns,
    parse_run_filter,
    parse_sort,
)
from contexta.query._models import RunRecord, RunsTable
from contexta.query._reading import reading
from contexta.query._resolve import project_filter_ref
from contexta.query._run_fields import RunField
from contexta.query._run_values import RunRows, fetch_run_rows, field_column, json_bound, metric_bound
from contexta.store import StoreDatabase, is_postgres

__all__ = ["DEFAULT_TABLE_COLUMNS", "check_page", "search_runs", "search_runs_table"]

DEFAULT_TABLE_COLUMNS = "run_id,name,status,started_at,duration"


def check_page(limit: object, offset: object) -> None:
    """`limit` a positive int and `offset` a non-negative one, or None; `ValidationError` otherwise."""
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValidationError(f"limit must be a positive int, got {limit!r}", code="limit_invalid")
    if offset is not None and (type(offset) is not int or offset < 0):
        raise ValidationError(f"offset must be an int of 0 or more, got {offset!r}", code="offset_invalid")


def _filter_of(filter: str | RunFilter | None) -> RunFilter | None:  # the public keyword
    if filter is None or isinstance(filter, RunFilter):
        return filter
    return parse_run_filter(filter)


def _sort_of(sort: str | Sequence[str | SortKey] | None) -> list[SortKey]:
    """Sort keys from a sort list, or from a sequence of them and of sort lists."""
    if sort is None:
        return []
    if isinstance(sort, str):
        return parse_sort(sort)
    keys: list[SortKey] = []
    for item in sort:
        if isinstance(item, SortKey):
            keys.append(item)
        elif isinstance(item, str):
            keys.extend(parse_sort(item))
        else:
            raise ValidationError(
                f"sort takes field names ('-metrics.accuracy') or SortKey, got {item!r}", code="sort_invalid"
            )
    return keys


def _column_list(columns: str | Sequence[str] | None) -> str:
    if columns is None:
        return DEFAULT_TABLE_COLUMNS
    if isinstance(columns, str):
        return columns
    if not all(isinstance(column, str) for column in columns):
        raise ValidationError(
            f"columns are field names ('name', 'params.lr'), got {list(columns)!r}", code="columns_invalid"
        )
    return ",".join(columns)


def _required_equalities(node: FilterNode | None) -> list[tuple[str, str]]:
    """`name = X` / `status = X` comparisons every matching run must pass: SQL can apply them. The
    first of each field is enough (the filter itself still runs over what SQL gives), and keeps a
    filter of a thousand such terms from becoming a statement SQLite refuses."""
    if node is None:
        return []
    parts = node.operands if isinstance(node, AllOf) else (node,)
    first: dict[str, str] = {}
    for part in parts:
        if (
            isinstance(part, Comparison)
            and part.operator == "="
            and part.field.kind in ("name", "status")
            and isinstance(part.value, str)
        ):
            first.setdefault(part.field.kind, part.value)
    return list(first.items())


def _page(rows: list[int], limit: int | None, offset: int | None, sorted_: bool) -> list[int]:
    """Sorted: `offset` rows skipped, then `limit` kept. Listing order: the most recent `limit` rows
    after skipping the `offset` most recent, still oldest first."""
    skip = offset or 0
    if sorted_:
        return rows[skip : None if limit is None else skip + limit]
    end = len(rows) - skip
    return rows[max(end - limit, 0) if limit is not None else 0 : max(end, 0)]


# Top-level metric comparisons a PostgreSQL search hands to the server first (`metric_bound`): a
# few are enough to leave only the runs that may match.
_BOUND_OPERATORS = frozenset(("<", "<=", ">", ">=", "=", "!="))
_MOST_BOUNDS = 4


def _metric_bounds(node: FilterNode | None) -> list[tuple[str, list[Any]]]:
    """`metric_bound` conditions for the comparisons of a metric's latest value with a finite number
    that every matching run must pass (the operands of a top-level `and`, or the filter itself)."""
    if node is None:
        return []
    parts = node.operands if isinstance(node, AllOf) else (node,)
    bounds = [
        metric_bound(part.field, part.operator, part.value)
        for part in parts
        if isinstance(part, Comparison)
        and part.field.kind == "metric"
        and part.field.aggregate == "latest"
        and part.operator in _BOUND_OPERATORS
        and isinstance(part.value, int | float)
        and not isinstance(part.value, bool)
        and math.isfinite(part.value)
    ]
    return bounds[:_MOST_BOUNDS]


def _json_bounds(node: FilterNode | None) -> list[tuple[str, list[Any]]]:
    """`json_bound` conditions for the `params.PATH = 'text'` / `tags.NAME = 'text'` comparisons every
    matching run must pass (the operands of a top-level `and`, or the filter itself)."""
    if node is None:
        return []
    parts = node.operands if isinstance(node, AllOf) else (node,)
    bounds = [
        json_bound(part.field, part.value)
        for part in parts
        if isinstance(part, Comparison) and part.operator == "=" and isinstance(part.value, str)
    ]
    return [bound for bound in bounds if bound is not None][:_MOST_BOUNDS]


def _select(
    connection: sqlite3.Connection,
    project: str | None,
    status: str | None,
    run_filter: RunFilter | None,
    sort: list[SortKey],
    limit: int | None,
    offset: int | None,
    all_executions: bool,
    include_archived: bool,
    shown: Sequence[RunField] = (),
) -> tuple[RunRows, list[int]]:
    """The runs considered (with the columns the filter, the sort and the `shown` fields read) and
    the rows of the page, in the order asked."""
    project_ref = None if project is None else project_filter_ref(project, connection)
    equal = _required_equalities(None if run_filter is None else run_filter.node)
    if status is not None:
        equal.append(("status", status))
    fields: list[RunField] = list(
        dict.fromkeys([*([] if run_filter is None else run_filter.fields()), *(key.field for key in sort)])
    )
    # PostgreSQL: what the server can rule out stays there (values cross the wire, unlike SQLite's).
    narrow = run_filter is not None and is_postgres(connection)
    runs = fetch_run_rows(
        connection,
        [*fields, *shown],
        project_ref=project_ref,
        equal=equal,
        all_executions=all_executions,
        include_archived=include_archived,
        narrowing=_metric_bounds(run_filter.node) if narrow and run_filter is not None else (),
        narrowing_json=_json_bounds(run_filter.node) if narrow and run_filter is not None else (),
    )
    columns = {field: comparable_column(field, field_column(connection, runs, field)) for field in fields}
    rows = list(range(runs.count))
    if run_filter is not None:
        rows = matching_rows(run_filter.node, columns, runs.count)
    if sort:
        rows = sorted_rows(rows, sort, columns)
    return runs, _page(rows, limit, offset, bool(sort))


def search_runs(
    db: StoreDatabase,
    project: str | None,
    *,
    status: str | None,
    limit: int | None,
    offset: int | None,
    filter: str | RunFilter | None,  # the public keyword
    sort: str | Sequence[str | SortKey] | None,
    all_executions: bool,
    include_archived: bool,
) -> list[RunRecord]:
    """`list_runs` with a filter, a sort or an offset (see `list_runs`)."""
    check_page(limit, offset)
    run_filter, keys = _filter_of(filter), _sort_of(sort)
    with reading(db) as connection, collection_paused():  # a full GC pass mid-search doubles it
        runs, page = _select(
            connection, project, status, run_filter, keys, limit, offset, all_executions, include_archived
        )
        if not page:
            return []
        by_execution = {
            record.execution_id: record
            for record in fetch_runs(connection, execution_ids=[runs.execution_id(row) for row in page])
        }
    return [by_execution[runs.execution_id(row)] for row in page]


def search_runs_table(
    db: StoreDatabase,
    project: str | None,
    *,
    filter: str | RunFilter | None,  # the public keyword
    sort: str | Sequence[str | SortKey] | None,
    columns: str | Sequence[str] | None,
    limit: int | None,
    offset: int | None,
    include_archived: bool,
) -> RunsTable:
    """`get_runs_table` (see there)."""
    check_page(limit, offset)
    run_filter, keys = _filter_of(filter), _sort_of(sort)
    named = parse_columns(_column_list(columns))
    with reading(db) as connection, collection_paused():  # a full GC pass mid-search doubles it
        runs, page = _select(
            connection,
            project,
            None,
            run_filter,
            keys,
            limit,
            offset,
            False,
            include_archived,
            [field for _, field in named],
        )
        values: dict[RunField, list[Any]] = {
            field: field_column(connection, runs, field, page) for field in dict.fromkeys(f for _, f in named)
        }
    cells = [values[field] for _, field in named]
    return RunsTable(
        columns=[name for name, _ in named],
        rows=[tuple(column[index] for column in cells) for index in range(len(page))],
    )
