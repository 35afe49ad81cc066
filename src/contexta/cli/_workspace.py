"""Finding the workspace a command names, and opening it without creating anything: read-only for
the commands that only read it, writable for `replay`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from contexta import Workspace
from contexta.config import UnifiedConfig, load_config, redacted_url
from contexta.errors import StoreError
from contexta.store import require_store_file

if TYPE_CHECKING:
    from contexta import Contexta

__all__ = [
    "open_workspace",
    "open_workspace_for_writing",
    "require_local_store",
    "require_store",
    "workspace_config",
]


def workspace_config(args: argparse.Namespace) -> UnifiedConfig:
    """The effective configuration for `--workspace` / `--project` (environment overrides included),
    set not to create missing directories: reading a workspace must not make one."""
    project: str | None = args.project
    return load_config(
        {
            "project_name": "default" if project is None else project.removeprefix("project:"),
            "workspace": {"root_path": args.workspace, "create_missing_dirs": False},
        }
    )


def require_store(config: UnifiedConfig) -> None:
    """A clear error (and nothing created) when there is no store there yet, or this user may not
    look into the directories that would hold it. A PostgreSQL store (`store.url`) says so itself
    when it is opened."""
    if config.store.url is None:
        require_store_file(config.workspace.root, config.workspace.store_file)


def require_local_store(config: UnifiedConfig, command: str) -> None:
    """`store_not_local` for a command that maintains the workspace's own SQLite file (its size, its
    compaction, a copy of it) when the workspace's store is a PostgreSQL server's."""
    if config.store.url is not None:
        raise StoreError(
            f"contexta {command} works on the workspace's own SQLite store; this workspace's store is in "
            f"PostgreSQL ({redacted_url(config.store.url)}): use the server's own tools there "
            "(pg_dump for a copy, VACUUM and pg_database_size for space)",
            code="store_not_local",
        )


def open_workspace(args: argparse.Namespace) -> Workspace:
    """The workspace's existing store, opened read-only: nothing is written, on any mount."""
    config = workspace_config(args)
    require_store(config)
    return Workspace(config=config)


def open_workspace_for_writing(args: argparse.Namespace) -> Contexta:
    """A `Contexta` over the workspace's existing store, for the commands that change it (capture is
    imported here, not by the read commands)."""
    from contexta import Contexta

    config = workspace_config(args)
    require_store(config)
    return Contexta(config=config)
