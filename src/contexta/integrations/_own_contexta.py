"""The configuration of the Contexta a framework callback opens for itself when it is given none.

The Hugging Face and Keras callbacks take either `ctx=` (a Contexta the user configured, left open) or
`workspace=`/`project_name=`/`config=` for one they open and close themselves; both check those the
same way, at construction, so a misspelt key fails before training starts, not an hour into it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

from contexta.config import load_config
from contexta.contract import normalize_name
from contexta.errors import ConfigurationError, ValidationError

__all__ = ["checked_run_name", "fitting_run_name", "own_contexta_config"]

_MAX_RUN_NAME = 63  # a run name's limit once normalised (contexta.contract's MAX_COMPONENT_LENGTH)
_NAME_DIGEST = 12  # hex digits of the full name's hash kept at the end of a shortened name


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


def checked_run_name(run_name: str | None) -> str | None:
    """`run_name` as given to a callback, checked when the callback is made rather than when training
    begins: None, or a name `ctx.run` takes (`ValidationError` otherwise)."""
    if run_name is not None and (not isinstance(run_name, str) or not run_name.strip()):
        raise ValidationError(
            f"run_name must be a non-empty string (or None for the framework's name), got {run_name!r}",
            code="field_invalid",
            details={"field": "run_name"},
        )
    if run_name is not None:
        normalize_name(run_name, "run_name")  # too long: `name_too_long`, saying the limit
    return run_name


def fitting_run_name(name: str, fallback: str) -> str:
    """A run name contexta takes for one the framework gave (the Trainer's `args.run_name` or output
    directory, a Keras model's name), which the user chose with no limit in mind: itself when it fits;
    shortened to its head and a hash of the whole when it is too long, so two long names differing
    only at the end (`...-seed42`, `...-seed43`) stay two runs; `fallback` when it has no letters
    or digits at all."""
    try:
        normalize_name(name, "run name")
        return name
    except ValidationError as error:
        if error.code == "name_empty":
            return fallback
        if error.code != "name_too_long":
            raise
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_NAME_DIGEST]
    head = name[: _MAX_RUN_NAME - _NAME_DIGEST - 1]
    while len(normalize_name(f"{head}-{digest}", "run name")) > _MAX_RUN_NAME:  # pragma: no cover
        head = head[:-1]  # only a name whose lower-casing grows it (some non-Latin letters)
    return f"{head}-{digest}"
