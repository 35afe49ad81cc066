"""Which store and artifact backends this build can open, checked before a workspace opens.

`store.url` and `artifacts.url` name remote backends (PostgreSQL, S3-compatible storage). A backend
this build cannot serve is refused at construction with a clear error, never silently replaced by
the embedded default: runs captured into the local SQLite file while the user believes they went to
the team's PostgreSQL would be runs nobody else can see.
"""

from __future__ import annotations

from contexta.config import UnifiedConfig, redacted_url
from contexta.errors import ConfigurationError

__all__ = ["require_available_backends"]

# Remote backends this build serves, by config key (filled in as each lands).
_AVAILABLE: dict[str, bool] = {"store.url": False, "artifacts.url": True}


def require_available_backends(config: UnifiedConfig) -> None:
    """ConfigurationError(`backend_unavailable`) for a configured backend this build cannot serve."""
    for key, url in (("store.url", config.store.url), ("artifacts.url", config.artifacts.url)):
        if url is not None and not _AVAILABLE[key]:
            raise ConfigurationError(
                f"{key} = {redacted_url(url)!r} names a backend this version of contexta cannot open yet; "
                f"unset {key} (and CONTEXTA_{key.replace('.', '_').upper()}) to use the workspace's own",
                code="backend_unavailable",
                details={"key": key},
            )
