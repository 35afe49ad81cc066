"""Small pieces of SQL the store's queries share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["where_equal"]


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
