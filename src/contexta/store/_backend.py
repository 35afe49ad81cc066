"""Which database holds a workspace's store: the SQLite file, or PostgreSQL when `store.url` says so."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from contexta.store._database import StoreDatabase

__all__ = ["open_store_database"]


def open_store_database(path: Path, url: str | None, *, read_only: bool = False) -> StoreDatabase:
    """The store's database: the SQLite file at `path`, or the PostgreSQL database at `url`.

    The PostgreSQL one answers the same calls (`read()`, `transaction()`, `close_all()`, ...) with
    connections that take the same SQL (see `_pg_database.py`); it is typed as the SQLite one so
    every reader and writer of the store serves both."""
    if url is None:
        return StoreDatabase(path, read_only=read_only)
    from contexta.store._pg_database import PostgresDatabase

    return cast(StoreDatabase, PostgresDatabase(url, read_only=read_only))
