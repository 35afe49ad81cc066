"""The configuration of the Contexta a framework callback opens for itself when it is given none.

The Hugging Face and Keras callbacks take either `ctx=` (a Contexta the user configured, left open) or
`workspace=`/`project_name=`/`config=` for one they open and close themselves; both check those the
same way, at construction, so a misspelt key fails before training starts, not an hour into it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from contexta.config import load_config
from contexta.errors import ConfigurationError

__all__ = ["own_contexta_config"]


def own_contexta_config(
    *,
    given: bool,
    workspace: str | os.PathLike[str],
    project_name: str | None,
    config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The mapping config for `Contexta(workspace=workspace, config=...)`, checked; `given` says the
    caller passed a Contexta (or run) of its own, which then must not come with project or config."""
    if given and (project_name is not None or config is not None):
        raise ConfigurationError(
            "pass either ctx= (a Contexta you configured) or project_name=/config= (for the one the "
            "callback opens), not both",
            code="callback_config_conflict",
        )
    if config is not None and not isinstance(config, Mapping):
        raise ConfigurationError(
            f"config must be a mapping as Contexta(config=...) takes it, got {type(config).__name__}",
            code="callback_config_invalid",
        )
    merged: dict[str, Any] = dict(config or {})
    if project_name is not None:
        merged["project_name"] = project_name
    if not given:  # a misspelt key or a bad project name fails here, not when training begins
        load_config(merged or None, workspace=workspace)
    return merged
