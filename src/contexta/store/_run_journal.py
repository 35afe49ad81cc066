"""The run journal: every change made to runs after capture, in order, beside the store file.

Tags, notes, archiving and deleting are decided by people after a run was captured, so the capture
log does not hold them, and a store rebuilt from the log (`contexta repair`) would silently lose
them. Each change is appended here (one JSON line, synced) inside the store transaction that makes
it, so the journal holds at least what the store holds; a rebuild replays it over the replayed log
(`store/_rebuild.py`), and `contexta gc` reads the executions it deleted to take their lines out of
the capture log and their unused artifact copies out of the workspace.

The file is `run-journal.jsonl` in the store's directory, so it stays where it is when a repair
moves the old store aside. A line torn by a kill mid-append is skipped: its change had not committed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

__all__ = [
    "ACTIONS",
    "RunAction",
    "RunChange",
    "TagValue",
    "append_to_journal",
    "journal_path",
    "read_journal",
]

JOURNAL_NAME = "run-journal.jsonl"

RunAction = Literal["tag", "untag", "note", "archive", "unarchive", "delete"]
ACTIONS: tuple[RunAction, ...] = ("tag", "untag", "note", "archive", "unarchive", "delete")
TagValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class RunChange:
    """One change to the executions `executions` of `run_ref`, made at `at` (ISO-8601 UTC).

    `tags` are set by `tag`; `names` removed by `untag`; `text` is added by `note`; `artifact_files`
    are the workspace's artifact copies a `delete` left without a manifest (gc removes them)."""

    action: RunAction
    run_ref: str
    executions: tuple[str, ...]
    at: str
    tags: Mapping[str, TagValue] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    text: str | None = None
    artifact_files: tuple[str, ...] = ()

    def to_line(self) -> bytes:
        document: dict[str, Any] = {
            "at": self.at,
            "action": self.action,
            "run_ref": self.run_ref,
            "executions": list(self.executions),
        }
        if self.tags:
            document["tags"] = dict(self.tags)
        if self.names:
            document["names"] = list(self.names)
        if self.text is not None:
            document["text"] = self.text
        if self.artifact_files:
            document["artifact_files"] = list(self.artifact_files)
        return orjson.dumps(document)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RunChange | None:
        """The change a journal line holds, or None for a line this version cannot read."""
        action = document.get("action")
        if action not in ACTIONS or not isinstance(document.get("run_ref"), str):
            return None
        tags = document.get("tags") or {}
        return cls(
            action=action,
            run_ref=document["run_ref"],
            executions=tuple(map(str, document.get("executions") or ())),
            at=str(document.get("at", "")),
            tags={str(name): value for name, value in tags.items()} if isinstance(tags, dict) else {},
            names=tuple(map(str, document.get("names") or ())),
            text=None if document.get("text") is None else str(document["text"]),
            artifact_files=tuple(map(str, document.get("artifact_files") or ())),
        )


def journal_path(store_file: Path) -> Path:
    """Where the journal of the store at `store_file` is kept."""
    return store_file.with_name(JOURNAL_NAME)


def append_to_journal(path: Path, change: RunChange) -> None:
    """Append `change` and sync it to disk before returning (the caller then commits the store)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        # A newline first: a line torn by an earlier kill stays its own (skipped) line.
        os.write(descriptor, b"\n" + change.to_line() + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_journal(path: Path) -> Iterator[RunChange]:
    """The journal's changes in the order they were made (none when there is no journal yet)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        change = RunChange.from_document(document) if isinstance(document, dict) else None
        if change is not None:
            yield change
