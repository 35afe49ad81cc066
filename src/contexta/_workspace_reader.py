"""A workspace opened only to read it: the questions `Contexta` answers, with nothing written.

The command line's read commands (`runs`, `run show`, `compare`, `best`, `diagnose`, `report`,
`verify`) stand on this, not on a `Contexta`: no writer thread, no exit or fork hooks, no migration,
no closing of runs whose process died, and the store opened read-only (`StoreDatabase(read_only=True)`),
so they work for a user who may not write the workspace and on a read-only mount, and change nothing
where they could. The one exception is a store of an older schema: today's queries cannot read it, so
where the workspace is writable it is migrated once (as any `Contexta` would), and where it is not the
error says it needs a writable open.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self

from contexta._investigation import Investigation
from contexta.config import UnifiedConfig
from contexta.errors import StoreError
from contexta.store._database import StoreDatabase

__all__ = ["STORE_FILE_NAME", "WorkspaceReader"]

STORE_FILE_NAME = "contexta.db"


class WorkspaceReader(Investigation):
    """Queries, reports and artifact checks over an existing workspace's store, opened read-only."""

    def __init__(self, config: UnifiedConfig):
        self._config = config
        self._database = self._open(config.workspace.metadata_dir / STORE_FILE_NAME)

    @staticmethod
    def _open(path: Path) -> StoreDatabase:
        database = StoreDatabase(path, read_only=True)
        try:
            with database.read():  # a damaged, unreadable, foreign or old store fails here, clearly
                pass
        except StoreError as error:
            if error.code != "store_needs_migration":
                raise
            _migrate(path, error)
            with database.read():
                pass
        return database

    def close(self) -> None:
        """Let go of the store's connections (idempotent)."""
        self._database.close_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _migrate(path: Path, needed: StoreError) -> None:
    """Bring an older store up to today's schema through a writable open; where this user cannot
    write, the read-only open's error (which says a writable open must migrate it) stands."""
    writable = StoreDatabase(path)
    try:
        with writable.read():
            pass
    except StoreError as error:
        if error.code in ("store_not_writable", "store_open_failed"):
            raise needed from None
        raise
    finally:
        writable.close_all()
