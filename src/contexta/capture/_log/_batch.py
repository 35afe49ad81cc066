"""The batch every sink receives: one writer cycle's records, shared read-only by all sinks.

Inside, metrics stay the caller's raw tuples and everything else is a built `CapturedEntry`. Each
sink takes the representation it needs: log lines (encoded once per sink name, metrics formatted
directly), the raw metrics (the store packs them into columns), or entries and validated contract
models, built only if some sink iterates the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson

from contexta.capture._items import only_tuples
from contexta.capture._log._entries import FAMILIES, CapturedEntry, entries_from_lines, entry_to_line
from contexta.capture._log._line_writer import Segment
from contexta.capture._log._metric_lines import Numbering, materialize_metric, record_lines, record_segments
from contexta.capture._log._unencodable import ENCODING_ERRORS, Isolated, isolate
from contexta.contract._model import ContractModel

__all__ = ["FAMILIES", "CaptureBatch", "CapturedEntry", "entries_from_lines", "entry_to_line"]

_NOT_CHECKED, _ALL_ENCODE, _REPLACED = 0, 1, 2
_ISOLATION_LOCK = threading.Lock()


class CaptureBatch(Sequence[CapturedEntry]):
    """The entries of one writer cycle, in capture order."""

    __slots__ = (
        "_encoded",
        "_entries",
        "_isolation",
        "_items",
        "_models",
        "_others",
        "batch_id",
        "isolated",
        "numbering",
    )

    def __init__(self, entries: Iterable[CapturedEntry], *, batch_id: str | None = None):
        # batch_id is set on batches replayed from the outbox, so a sink can store each of them once.
        self.batch_id = batch_id
        self._items: list[Any] = list(entries)
        # Caches of what the items give, each with the items list it was made from: a batch whose
        # records no sink can encode gets a new list (see isolate_unencodable), and a cache made from
        # the old one, even by a sink's thread finishing just then, is never used again.
        self._others: tuple[list[Any], list[CapturedEntry]] | None = None  # ARTIFACT and CONTEXT entries
        self.numbering: Numbering | None = None
        self._entries: tuple[list[Any], tuple[CapturedEntry, ...]] | None = None
        self._encoded: dict[tuple[str, str], bytes] = {}
        self._models: tuple[list[Any], list[ContractModel | dict[str, Any]]] | None = None
        # Whether the batch was gone through for records no sink can encode (see _unencodable.py).
        self._isolation = _NOT_CHECKED
        self.isolated: list[Isolated] = []  # what that replaced, until the writer counts it

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
        return self._materialized_from(self._items)

    def _materialized_from(self, items: list[Any]) -> tuple[CapturedEntry, ...]:
        cached = self._entries
        if cached is not None and cached[0] is items:
            return cached[1]
        numbering = self.numbering
        entries = tuple(
            item if type(item) is not tuple else materialize_metric(item, position, numbering)  # type: ignore[arg-type]
            for position, item in enumerate(items)
        )
        self._entries = (items, entries)
        return entries

    def family(self, family: str) -> list[CapturedEntry]:
        return [entry for entry in self if entry.family == family]

    def record_segments(
        self, sink_name: str, between_pieces: Callable[[], None] | None = None
    ) -> list[Segment]:
        """The RECORD lines as segments (metric columns and finished lines) for `assemble`; see
        `_metric_lines.record_segments` for `between_pieces`."""
        try:
            return record_segments(self._items, self.numbering, sink_name, between_pieces)
        except ENCODING_ERRORS:
            if not self.isolate_unencodable():
                raise
            return record_segments(self._items, self.numbering, sink_name, between_pieces)

    def encoded(self, family: str, sink_name: str) -> bytes:
        """The newline-terminated log lines of one family, encoded once per sink name. A record that
        cannot be encoded is replaced first (see `isolate_unencodable`), never failing its batch."""
        key = (family, sink_name)
        data = self._encoded.get(key)
        if data is None:
            try:
                data = self._encode(family, sink_name)
            except ENCODING_ERRORS:
                if not self.isolate_unencodable():
                    raise
                data = self._encode(family, sink_name)
            self._encoded[key] = data
        return data

    def _encode(self, family: str, sink_name: str) -> bytes:
        if family == "RECORD":
            return record_lines(self._items, self.numbering, sink_name)
        items, cached = self._items, self._others
        if cached is not None and cached[0] is items:
            others = cached[1]
        else:
            only_metrics = only_tuples(items)  # decided at C speed
            others = [
                item
                for item in ([] if only_metrics else items)
                if type(item) is not tuple and item.family != "RECORD"
            ]
            self._others = (items, others)
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        return b"".join(
            dumps(entry_to_line(entry, sink_name), option=newline)
            for entry in others
            if entry.family == family
        )

    def isolate_unencodable(self) -> bool:
        """Replace each record whose capture-log line cannot be encoded (see _unencodable.py), once
        per batch, after encoding the whole batch failed; True when the batch holds replacements
        (made now or by an earlier call), so a sink that failed on it may write it again.

        The items are replaced as a whole list, never changed in place, so a sink reading the batch
        meanwhile sees one version or the other; lines already encoded stay valid (a family that
        encoded held no record that cannot be).
        """
        with _ISOLATION_LOCK:  # one lock for all batches: this runs only after a failure
            if self._isolation == _NOT_CHECKED:
                items, isolated = isolate(self._items, self.numbering)
                self._isolation = _REPLACED if isolated else _ALL_ENCODE
                if isolated:
                    self._items = items
                    self.isolated = [*self.isolated, *isolated]
            return self._isolation == _REPLACED

    def take_isolated(self) -> list[Isolated]:
        """What `isolate_unencodable` replaced and nobody has counted yet (each record once)."""
        if not self.isolated:
            return []
        with _ISOLATION_LOCK:
            isolated, self.isolated = self.isolated, []
        return isolated

    def models(self) -> list[ContractModel | dict[str, Any]]:
        """Every entry as its validated contract model, built on first use."""
        items, cached = self._items, self._models
        if cached is not None and cached[0] is items:
            return cached[1]
        models = [entry.to_model() for entry in self._materialized_from(items)]
        self._models = (items, models)
        return models
