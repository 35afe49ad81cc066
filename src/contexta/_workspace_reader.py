"""A workspace opened only to read it: the questions `Contexta` answers, with nothing written.

The command line's read commands (`runs`, `run show`, `compare`, `best`, `diagnose`, `report`,
`verify`), reports and everything later that only reads (export, the dashboard) stand on this, not
on a `Contexta`: no writer thread, no exit or fork hooks, no migration, no closing of runs whose
process died, nothing created, and the store opened read-only (`StoreDatabase(read_only=True)`), so
they work for a user who may not write the workspace and on a read-only mount, and change nothing
where they could. Maintenance that writes happens only where capture opens the workspace
(`Contexta(...)`) or in an explicit command (`contexta migrate`, `contexta repair`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from contexta._investigation import Investigation
from contexta.config import UnifiedConfig, load_config
from contexta.store import require_store_file
from contexta.store._backend import open_store_database

__all__ = ["Workspace"]


class Workspace(Investigation):
    """An existing workspace, opened to read it: `Workspace(".contexta").list_runs()`.

    Answers every question `Contexta` answers (runs, series, comparisons, diagnostics, reports,
    artifact checks) from the workspace's store as it is on disk. Opening checks the store once:
    a missing workspace raises `NotFoundError`; a store this user may not read, a damaged or foreign
    file, or one written by an older version (`store_needs_migration`: `contexta migrate` brings it
    up to date) raise `StoreError` saying which. It holds a few read-only SQLite connections and no
    thread; `close()` (or leaving a `with` block) lets them go.
    """

    def __init__(
        self,
        workspace: str | os.PathLike[str] = ".contexta",
        *,
        profile: str | None = None,
        config: UnifiedConfig | Mapping[str, Any] | None = None,
    ):
        self._config = load_config(config, workspace=workspace, profile=profile)
        path = self._config.workspace.store_file
        if self._config.store.url is None:
            require_store_file(self._config.workspace.root, path)
        self._database = open_store_database(path, self._config.store.url, read_only=True)
        try:
            with self._database.read():  # a damaged, unreadable, foreign or old store fails here, clearly
                pass
        except BaseException:
            self._database.close_all()
            raise

    def close(self) -> None:
        """Let go of the store's connections (idempotent; a later question opens them again)."""
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

    def __repr__(self) -> str:
        return f"Workspace({str(self._config.workspace.root)!r})"


# The name the command line knew it by.
