"""Finding the workspace a command names, and opening it for reading without creating anything."""

from __future__ import annotations

import argparse

from contexta import Contexta
from contexta.cli._output import CommandError
from contexta.config import UnifiedConfig, load_config

__all__ = ["STORE_FILE_NAME", "open_workspace", "workspace_config"]

STORE_FILE_NAME = "contexta.db"


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


def open_workspace(args: argparse.Namespace) -> Contexta:
    """A `Contexta` over the workspace's existing store; `CommandError` (and nothing created) when
    there is no store there yet."""
    config = workspace_config(args)
    root = config.workspace.root
    store = config.workspace.metadata_dir / STORE_FILE_NAME
    if not store.is_file():
        how = (
            f"capture a run into it first (with Contexta(workspace={str(root)!r}).run(...)), "
            "or point --workspace at an existing workspace"
        )
        if not root.exists():
            raise CommandError(f"no workspace at {root}: {how}")
        raise CommandError(f"no Contexta store in {root} yet ({store} does not exist): {how}")
    return Contexta(config=config)
