"""Naming the closest existing names when a name given is unknown, so a typo (`acuracy`) is answered
with what was meant (`accuracy`) rather than with an empty result."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest_names", "did_you_mean", "unknown_name_hint"]

_SHOWN = 3  # closest names offered
_LISTED = 8  # names listed when none is close


def closest_names(name: str, known: Iterable[str], limit: int = _SHOWN) -> list[str]:
    """The known names most like `name`, closest first (difflib's ratio, at least 0.5)."""
    return difflib.get_close_matches(name, list(dict.fromkeys(known)), n=limit, cutoff=0.5)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`did you mean 'a', 'b'? ` when some known name is close to `name`, else the empty string."""
    close = closest_names(name, known)
    return "did you mean " + ", ".join(repr(item) for item in close) + "? " if close else ""


def unknown_name_hint(name: str, known: Iterable[str], label: str = "known", listed: int = _LISTED) -> str:
    """`did you mean 'a', 'b'?` when some known name is close, else the known names listed after
    `label` (or `there are none`): the tail of a NotFoundError's message."""
    names = list(dict.fromkeys(known))
    close = closest_names(name, names)
    if close:
        return "did you mean " + ", ".join(repr(item) for item in close) + "?"
    if not names:
        return "there are none"
    shown = ", ".join(names[:listed])
    return f"{label}: {shown}" + (f", … ({len(names)} in all)" if len(names) > listed else "")
