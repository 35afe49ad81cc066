"""`contexta.sync_workspace`: a workspace captured offline, pushed into the team's PostgreSQL store
(resumable and idempotent; see contexta/capture/_sinks/_sync.py for how)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from contexta.capture import SyncReport, sync_capture_log, workspace_id
from contexta.config import StoreConfig, UnifiedConfig, load_config
from contexta.errors import NotFoundError
from contexta.store import open_store_database

__all__ = ["SyncReport", "sync_workspace"]


def sync_workspace(
    workspace: str | os.PathLike[str],
    to: str,
    *,
    config: UnifiedConfig | Mapping[str, Any] | None = None,
) -> SyncReport:
    """Push everything the capture log of `workspace` holds into the PostgreSQL store at `to`.

    Safe to run again, or after it was interrupted: the target then gets only what it lacks.
    `ConfigurationError` when `to` is not a postgresql:// URL, `NotFoundError` when there is no
    capture log at `workspace`, `StoreError` when the target cannot be reached or is not a store."""
    StoreConfig(url=to)  # refuses a URL of another kind, clearly, without echoing a password
    layout = load_config(config, workspace=workspace).workspace
    if not layout.capture_dir.is_dir():
        raise NotFoundError(
            f"no capture log at {layout.capture_dir}: sync pushes a workspace that captured runs",
            code="workspace_not_found",
            details={"path": str(layout.root)},
        )
    target = open_store_database(layout.store_file, to)
    try:
        return sync_capture_log(layout.capture_dir, target, workspace_id(layout.metadata_dir))
    finally:
        target.close_all()
