"""The batch every sink receives: one writer cycle's records, shared read-only by all sinks.

Inside, metrics stay the caller's raw tuples and everything else is a built `CapturedEntry`. Each
sink takes the representation it needs: log lines (encoded once per sink name, metrics formatted
directly), the raw metrics (the store packs them into columns), or entries and validated contract
models, built only if some sink iterates the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from contexta.capture._entries import FAMILIES, CapturedEntry, entries_from_lines, entry_to_line
from contexta.capture._items import only_tuples
from contexta.capture._line_writer import Segment
from contexta.capture._metric_lines import Numbering, materialize_metric, record_lines, record_segments
from contexta.contract._model import ContractModel

__all__ = ["FAMILIES", "CaptureBatch", "CapturedEntry", "entries_from_lines", "entry_to_line"]


class CaptureBatch(Sequence[CapturedEntry]):
    """The entries of one writer cycle, in capture order."""

    __slots__ = ("_encoded", "_entries", "_items", "_models", "_others", "batch_id", "numbering")

    def __init__(self, entries: Iterable[CapturedEntry], *, batch_id: str | None = None):
        # batch_id is set on batches replayed from the outbox, so a sink can store each of them once.
        self.batch_id = batch_id
        self._items: list[Any] = list(entries)
        self._others: list[CapturedEntry] | None = None  # entries of the ARTIFACT and CONTEXT families
        self.numbering: Numbering | None = None
        self._entries: tuple[CapturedEntry, ...] | None = None
        self._encoded: dict[tuple[str, str], bytes] = {}
        self._models: list[ContractModel | dict[str, Any]] | None = None

    @classmethod
    def from_writer(cls, items: list[Any], numbering: Numbering) -> CaptureBatch:
        """A batch of raw metric tuples and entries, whose metrics are named by `numbering`."""
        batch = cls(())
        batch._items = items
        batch.numbering = numbering
        return batch

    @property
    def items(self) -> list[Any]:
        """The raw items (METRIC tuples and entries) for the built-in sinks; do not modify."""
        return self._items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> CapturedEntry:  # type: ignore[override]
        return self._materialized()[index]

    def __iter__(self) -> Iterator[CapturedEntry]:
        return iter(self._materialized())

    def _materialized(self) -> tuple[CapturedEntry, ...]:
        if self._entries is None:
            numbering = self.numbering
            self._entries = tuple(
                item if type(item) is not tuple else materialize_metric(item, position, numbering)  # type: ignore[arg-type]
                for position, item in enumerate(self._items)
            )
        return self._entries

    def family(self, family: str) -> list[CapturedEntry]:
        return [entry for entry in self if entry.family == family]

    def record_segments(self, sink_name: str) -> list[Segment]:
        """The RECORD lines as segments (metric columns and finished lines) for `assemble`."""
        return record_segments(self._items, self.numbering, sink_name)

    def encoded(self, family: str, sink_name: str) -> bytes:
        """The newline-terminated log lines of one family, encoded once per sink name."""
        key = (family, sink_name)
        data = self._encoded.get(key)
        if data is None:
            if family == "RECORD":
                data = record_lines(self._items, self.numbering, sink_name)
            else:
                if self._others is None:
                    only_metrics = only_tuples(self._items)  # decided at C speed
                    self._others = [
                        item
                        for item in ([] if only_metrics else self._items)
                        if type(item) is not tuple and item.family != "RECORD"
                    ]
                dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
                data = b"".join(
                    dumps(entry_to_line(entry, sink_name), option=newline)
                    for entry in self._others
                    if entry.family == family
                )
            self._encoded[key] = data
        return data

    def models(self) -> list[ContractModel | dict[str, Any]]:
        """Every entry as its validated contract model, built on first use."""
        if self._models is None:
            self._models = [entry.to_model() for entry in self]
        return self._models
