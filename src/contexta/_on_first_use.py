"""Modules imported on first use, so that `import contexta` in a training script does not pay for
the read side (queries, reports) it may never call."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["on_first_use"]


class _OnFirstUse:
    """Stands in for a module: the first attribute read imports it (then `sys.modules` has it)."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"


def on_first_use(name: str) -> Any:
    """A stand-in for the module `name`, typed as the caller declares it under TYPE_CHECKING."""
    return _OnFirstUse(name)
