"""Small pieces of SQL the store's queries share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["is_postgres", "where_equal"]


def is_postgres(connection: Any) -> bool:
    """Whether `connection` is a PostgreSQL store's (see _pg_database.py), for the few statements
    the two databases cannot share."""
    return getattr(connection, "dialect", "sqlite") == "postgresql"


def where_equal(filters: Iterable[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """` WHERE a = ? AND b = ?` for the (column, value) pairs whose value is not None, and the values;
    `("", [])` when none is given. Columns are the caller's own names, never user text."""
    clauses: list[str] = []
    parameters: list[Any] = []
    for column, value in filters:
        if value is not None:
            clauses.append(f"{column} = ?")
            parameters.append(value)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), parameters
