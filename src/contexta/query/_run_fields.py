"""The fields of a run that filters, sorts and run tables name, and how their names are read.

One reader for all three, so `metrics.accuracy` means the same thing in `--filter`, `--sort` and
`--columns`:

- `name`, `status`, `run_id`, `project`: text; `started_at`: an instant; `duration`: seconds from
  start to end (none while the run is open);
- `metrics.KEY`: the value of KEY captured last in the run, in any stage; `metrics.STAGE:KEY` the one
  captured last inside that stage; `min(metrics.KEY)` / `max(metrics.KEY)` (stage-qualified too) the
  smallest / largest of all the run's points of KEY, NaN left out;
- `params.A.B`: the value at that path of the run's config_snapshot; `tags.NAME`: one tag.

Backquotes keep dots (or a colon) inside one segment: metrics.`macro.f1`, params.`a.b`.c . A metric
key or tag name needs no backquotes for dots (the rest of the word is the key), a params path does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contexta.query._filter_tokens import Token, pointed_error

__all__ = ["PLAIN_FIELDS", "Aggregate", "FieldKind", "RunField", "read_field", "split_list"]

FieldKind = Literal["name", "status", "run_id", "project", "started_at", "duration", "metric", "param", "tag"]
Aggregate = Literal["latest", "min", "max"]

PLAIN_FIELDS: tuple[FieldKind, ...] = ("name", "status", "run_id", "project", "started_at", "duration")
_FIELD_HELP = (
    "use name, status, run_id, project, started_at, duration, metrics.KEY, metrics.STAGE:KEY, "
    "min(metrics.KEY), max(metrics.KEY), params.PATH or tags.NAME"
)


@dataclass(frozen=True, slots=True)
class RunField:
    """A field of a run: `kind`, and for metrics the key, stage and aggregate, for params the path
    into config_snapshot, for tags the tag's name (`path[0]`)."""

    kind: FieldKind
    path: tuple[str, ...] = ()
    stage: str | None = None
    aggregate: Aggregate = "latest"

    @property
    def key(self) -> str:
        """The metric key or tag name."""
        return self.path[0]


def _unquote(text: str) -> str:
    return text.replace("`", "")


def _split_outside_backquotes(text: str, separator: str, limit: int = -1) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == "`":
            quoted = not quoted
        if char == separator and not quoted and limit != 0:
            parts.append("".join(current))
            current = []
            limit -= 1
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def read_field(
    source: str,
    token: Token,
    aggregate: Aggregate = "latest",
    *,
    what: str = "filter",
    code: str = "filter_invalid",
) -> RunField:
    """The field a word token names; `ValidationError(code)` pointing at it when it names none."""

    def fail(problem: str) -> Exception:
        return pointed_error(source, token.start, token.end, problem, what=what, code=code)

    if token.kind != "word":
        raise fail(f"expected a field, got {token.text or 'the end'!r}; {_FIELD_HELP}")
    head, dot, rest = token.text.partition(".")
    if not dot and head in PLAIN_FIELDS:
        if aggregate != "latest":
            raise fail(f"{aggregate}() takes a metric (min(metrics.KEY)), not {head}")
        return RunField(head)
    if head not in ("metrics", "params", "tags") or not dot or not rest:
        raise fail(f"unknown field {token.text!r}; {_FIELD_HELP}")
    if aggregate != "latest" and head != "metrics":
        raise fail(f"{aggregate}() takes a metric (min(metrics.KEY)), not {head}")
    if head == "params":
        path = tuple(_unquote(part) for part in _split_outside_backquotes(rest, "."))
        if not all(path):
            raise fail(f"empty segment in params path {token.text!r}")
        return RunField("param", path)
    if head == "tags":
        return RunField("tag", (_unquote(rest),))
    stage_and_key = _split_outside_backquotes(rest, ":", limit=1)
    key = _unquote(stage_and_key[-1])
    stage = _unquote(stage_and_key[0]) if len(stage_and_key) == 2 else None
    if not key or stage == "":
        raise fail(f"expected metrics.KEY or metrics.STAGE:KEY, got {token.text!r}")
    return RunField("metric", (key,), stage, aggregate)


def split_list(source: str, *, what: str, code: str) -> list[tuple[str, int, int]]:
    """The comma-separated items of a sort or column list, each trimmed, with where it is (commas
    inside backquotes belong to their item); `ValidationError(code)` at an empty item."""
    items, start = [], 0
    for part in [*_split_outside_backquotes(source, ","), None]:
        if part is None:
            break
        leading = len(part) - len(part.lstrip())
        text = part.strip()
        if not text:
            raise pointed_error(source, start, start + max(len(part), 1), "empty item", what=what, code=code)
        items.append((text, start + leading, start + leading + len(text)))
        start += len(part) + 1
    return items
