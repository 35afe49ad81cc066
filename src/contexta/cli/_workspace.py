"""Finding the workspace a command names, and opening it without creating anything: read-only for
the commands that only read it, writable for `replay`."""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path

from contexta import Contexta, Workspace
from contexta.cli._output import CommandError
from contexta.config import UnifiedConfig, load_config

__all__ = [
    "open_workspace",
    "open_workspace_for_writing",
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
    """`CommandError` (and nothing created) when there is no store there yet, or this user may not
    look into the directories that would hold it."""
    root = config.workspace.root
    store = config.workspace.store_file
    try:
        store.stat()
        return
    except PermissionError:
        raise CommandError(
            f"cannot read {store}: permission denied (check the permissions of {_first_closed(store)})"
        ) from None
    except OSError as error:
        if error.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise
    how = (
        f"capture a run into it first (with Contexta(workspace={str(root)!r}).run(...)), "
        "or point --workspace at an existing workspace"
    )
    if not root.exists():
        raise CommandError(f"no workspace at {root}: {how}")
    raise CommandError(f"no Contexta store in {root} yet ({store} does not exist): {how}")


def _first_closed(path: Path) -> Path:
    """The outermost directory on the way to `path` that this user may not enter (else `path`)."""
    for directory in reversed(path.parents):
        if not os.access(directory, os.X_OK):
            return directory
    return path


def open_workspace(args: argparse.Namespace) -> Workspace:
    """The workspace's existing store, opened read-only: nothing is written, on any mount."""
    config = workspace_config(args)
    require_store(config)
    return Workspace(config=config)


def open_workspace_for_writing(args: argparse.Namespace) -> Contexta:
    """A `Contexta` over the workspace's existing store, for the commands that change it."""
    config = workspace_config(args)
    require_store(config)
    return Contexta(config=config)
