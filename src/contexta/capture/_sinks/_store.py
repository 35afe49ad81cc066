"""The store sink: each captured batch written into the canonical store, one transaction per batch.

The store offers a typed write API (`IngestBatch`: scopes, record documents, metric columns,
artifact manifests); this module is the adapter from what capture queues to that API. Its one
subtle job is metrics: the queued metric tuples of a batch are grouped by series and appended to
the store's columns, at C speed where the batch allows (see `MetricColumns`).
"""

from __future__ import annotations

import uuid
from array import array
from collections.abc import Callable
from itertools import compress, pairwise
from operator import ne, or_
from pathlib import Path
from typing import Any

from contexta._courtesy import make_way
from contexta.capture._items import (
    METRIC_CONTEXT,
    METRIC_FIELDS,
    METRIC_KEY,
    METRIC_STEP,
    METRIC_T_NS,
    METRIC_TAGS,
    METRIC_VALUE,
    ScopeContext,
    as_context,
    has_default_options,
    only_tuples,
)
from contexta.capture._log._batch import CaptureBatch
from contexta.capture._log._metric_lines import Numbering
from contexta.capture._sinks._base import FollowsCaptureLog
from contexta.errors import StoreError
from contexta.store import ChunkNaming, IngestBatch, SeriesIdentity, SeriesPoints, StoreDatabase, StoreIngest

try:
    from contexta.capture._metric_columns import plain_metric_columns
except ImportError:  # built without a C compiler: `_add_plain_runs_in_python` does the same
    plain_metric_columns = None  # type: ignore[assignment]

__all__ = ["MetricColumns", "StoreSink"]

# Adding a run of one series costs about as much as adding four points one by one (4,096-point
# batches of 100 interleaved series), so batches whose runs average fewer points go point by point.
_SHORTEST_RUN = 4
# Items of a batch whose metric tuples are added in one go between two pauses (see `MetricColumns.add`).
_PIECE = 4096
_NO_STEP = SeriesPoints.NO_STEP


_POSITIONS = array(SeriesPoints.POSITION_TYPE)


def _positions(count: int) -> array[int]:
    """0, 1, 2, ... up to at least `count`, kept between batches: a run's positions are a slice."""
    global _POSITIONS
    if len(_POSITIONS) < count:
        _POSITIONS = array(SeriesPoints.POSITION_TYPE, range(max(count, 2 * len(_POSITIONS))))
    return _POSITIONS


class StoreSink(FollowsCaptureLog):
    """Makes captured runs queryable the moment their batch commits (see `StoreIngest`).

    A batch the store cannot take (a full disk, a file that is not a store) raises: the writer
    parks it in the outbox, counts it and warns, and the next batch tries again.
    """

    def __init__(
        self,
        database: StoreDatabase,
        *,
        name: str = "canonical-store",
        live_dir: Path | None = None,
        warn_open_elsewhere: bool = True,
    ):
        self.name = name
        self.database = database
        self._ingest = StoreIngest(database, live_dir=live_dir, warn_open_elsewhere=warn_open_elsewhere)
        self._identities = SeriesIdentities()

    @property
    def redelivers_parked(self) -> bool:
        """A PostgreSQL store: batches it refused while unreachable are delivered by its lane when it
        is back, in capture order (see _lanes.py); a SQLite file is tried again batch by batch."""
        return self.database.path is None

    @staticmethod
    def refused_unreachable(error: Exception) -> bool:
        """Whether the store refused a batch because it could not be reached (later batches wait
        behind it), not because it cannot take that batch (a value PostgreSQL refuses), which is
        parked alone while the batches after it go on being written."""
        return isinstance(error, StoreError) and error.code == "store_unreachable"

    def write(self, batch: CaptureBatch) -> None:
        if batch.batch_id is None and self.redelivers_parked:
            # Recorded with the batch in one transaction: a commit whose answer the network lost is
            # not stored twice when the parked batch (which keeps this id) is delivered again.
            batch.batch_id = f"live:{uuid.uuid4().hex}"
        self._ingest.write(len(batch.items), self._filler(batch), batch_id=batch.batch_id)

    def _filler(self, batch: CaptureBatch) -> Callable[[IngestBatch], None]:
        def fill(ingest: IngestBatch) -> None:
            items = batch.items
            # The common batch is raw metrics only (decided at C speed): no entry to look for.
            for position, item in enumerate(() if only_tuples(items) else items):
                if type(item) is tuple:
                    continue  # a raw metric: packed with its neighbours below
                family, payload = item.family, item.payload
                if family == "RECORD":
                    ingest.put_record(position, payload)
                elif family == "CONTEXT":
                    ingest.put_scope(item.payload_type, payload)
                elif family == "ARTIFACT":
                    ingest.put_artifact(
                        payload["manifest"],
                        binding_status=payload["binding_status"],
                        source_exists=bool(payload["source"].get("exists")),
                    )
            MetricColumns(ingest, self._identities).add(items, 0, len(items))
            ingest.naming = _chunk_naming(batch.numbering)

        return fill

    def flush(self) -> None:
        """Each batch is committed when written; nothing is held back."""

    def close(self) -> None:
        """The database belongs to the Contexta, which closes it after the writer stops."""


def _chunk_naming(numbering: Numbering | None) -> ChunkNaming | None:
    if numbering is None:
        return None
    return ChunkNaming(numbering.id_prefix, numbering.first, numbering.recorded_ns)


class SeriesIdentities:
    """The series identity of each (scope context, key) seen, remembered between batches: a training
    loop logs the same few series thousands of times. Kept with its context, so the `id` it is
    found by cannot be reused by another context meanwhile; emptied past `LIMIT` entries."""

    LIMIT = 20_000

    def __init__(self) -> None:
        self._known: dict[tuple[int, str], tuple[Any, SeriesIdentity]] = {}

    def of_plain(self, context: Any, key: str) -> SeriesIdentity:
        """The identity of a plain float point (no unit, step scope, no tags) of `context`."""
        known = self._known.get((id(context), key))
        if known is not None and known[0] is context:
            return known[1]
        if len(self._known) >= self.LIMIT:
            self._known.clear()
        identity = series_identity(context, key, 0.0, None, "step", None)
        self._known[(id(context), key)] = (context, identity)
        return identity


def series_identity(
    fields: ScopeContext | tuple[str | None, ...],
    key: str,
    value: float | int,
    unit: str | None,
    scope: str,
    tags: Any,
) -> SeriesIdentity:
    """The series a queued metric belongs to."""
    context = as_context(fields)
    refs = (context.run_ref, context.stage_ref, context.batch_ref, context.sample_ref, context.deployment_ref)
    value_type = "float64" if type(value) is float else "int64"
    return SeriesIdentity.captured(
        context.execution_id, refs, key, value_type, unit, scope, context.ref, tags
    )


class MetricColumns:
    """Appends a batch's queued metric tuples to the store's columns, grouped by series."""

    def __init__(self, ingest: IngestBatch, identities: SeriesIdentities):
        self._ingest = ingest
        self._identities = identities
        # The common point (float, no unit, step scope, no tags) by its context's id and key.
        self._plain: dict[tuple[int, str], SeriesPoints] = {}

    def add(self, items: list[Any], start: int, stop: int) -> None:
        """Add the raw METRIC tuples among `items[start:stop]` (other items are skipped), a piece of
        `_PIECE` items at a time, making way for capturing threads between pieces (the compiled split
        of a whole 16,384-item batch held the GIL for about a millisecond)."""
        for first in range(start, stop, _PIECE):
            self._add_piece(items, first, min(stop, first + _PIECE))
            make_way()

    def _add_piece(self, items: list[Any], start: int, stop: int) -> None:
        if self._add_plain_runs(items, start, stop):
            return
        others = [
            position for position, kind in enumerate(map(type, items[start:stop]), start) if kind is not tuple
        ]
        if not others:
            self._add_points(items, start, stop)
            return
        # A few entries among the tuples (a scope opening, the environment snapshot) made the compiled
        # split refuse the whole range, and a burst's first batches then went point by point (an
        # eighth of a 200,000-call burst, holding the GIL the caller waits for): the runs of tuples
        # between them still go column by column, as the capture log's segments do.
        bounds = [start - 1, *others, stop]
        for before, after in pairwise(bounds):
            if after - before > 1 and not self._add_plain_runs(items, before + 1, after):
                self._add_points(items, before + 1, after)

    def _add_points(self, items: list[Any], start: int, stop: int) -> None:
        """The raw METRIC tuples among `items[start:stop]`, one by one (other items are skipped)."""
        plain = self._plain
        for position in range(start, stop):
            item = items[position]
            if type(item) is not tuple:
                continue
            t_ns, context, key, value, unit, step, scope, tags = METRIC_FIELDS(item)
            if unit is None and scope == "step" and tags is None and type(value) is float:
                points = plain.get((id(context), key)) or self._plain_points(context, key)
            else:
                points = self._ingest.series(series_identity(context, key, value, unit, scope, tags))
            points.positions.append(position)
            points.observed.append(t_ns)
            points.values.append(value)
            points.steps.append(_NO_STEP if step is None else step)

    def _add_plain_runs(self, items: list[Any], start: int, stop: int) -> bool:
        """Plain float points added column by column at C speed, a run of consecutive points of one
        series at a time; False leaves anything else, and points of different series interleaved
        one by one, to the point-by-point loop."""
        if plain_metric_columns is None:
            return self._add_plain_runs_in_python(items, start, stop)  # type: ignore[unreachable]
        split = plain_metric_columns(items, start, stop)  # one pass in C (`_metric_columns.c`)
        if split is None:
            return False
        run_starts, observed_bytes, values_bytes, steps_bytes, _, _ = split
        length = stop - start
        if len(run_starts) * _SHORTEST_RUN > length:
            return False  # runs this short are cheaper point by point
        observed, values, steps = array("q"), array("d"), array("q")
        observed.frombytes(observed_bytes)
        values.frombytes(values_bytes)
        steps.frombytes(steps_bytes)
        for first, end in zip(run_starts, [*run_starts[1:], length], strict=True):
            head = items[start + first]
            points = self._plain_points(METRIC_CONTEXT(head), METRIC_KEY(head))
            points.positions += _positions(start + end)[start + first : start + end]
            points.observed += observed[first:end]
            points.values += values[first:end]
            points.steps += steps[first:end]
        return True

    def _add_plain_runs_in_python(self, items: list[Any], start: int, stop: int) -> bool:
        """`_add_plain_runs` where the package was built without its C helper: the same checks and
        the same columns, with Python's C-level helpers (about fifteen passes over the batch)."""
        run = items[start:stop]
        if not run or not only_tuples(run) or not has_default_options(run):
            return False
        length = len(run)
        values = list(map(METRIC_VALUE, run))
        if (
            list(map(METRIC_TAGS, run)).count(None) != length
            or list(map(type, values)).count(float) != length
        ):
            return False
        contexts, keys = list(map(METRIC_CONTEXT, run)), list(map(METRIC_KEY, run))
        # Where the series changes: concurrent tasks each capture a few points per turn, so a batch
        # of their samples is a sequence of short runs, not one point of each in turn.
        identities = list(map(id, contexts))
        changes = map(or_, map(ne, identities[1:], identities), map(ne, keys[1:], keys))
        run_starts = [0, *compress(range(1, length), changes)]
        if len(run_starts) * _SHORTEST_RUN > length:
            return False  # runs this short are cheaper point by point
        steps = list(map(METRIC_STEP, run))
        if steps.count(None):
            steps = [_NO_STEP if step is None else step for step in steps]
        observed = list(map(METRIC_T_NS, run))
        for first, end in zip(run_starts, [*run_starts[1:], length], strict=True):
            points = self._plain_points(contexts[first], keys[first])
            points.positions.extend(range(start + first, start + end))
            points.observed.extend(observed[first:end])
            points.values.extend(values[first:end])
            points.steps.extend(steps[first:end])
        return True

    def _plain_points(self, context: Any, key: str) -> SeriesPoints:
        points = self._plain.get((id(context), key))
        if points is None:
            identity = self._identities.of_plain(context, key)
            points = self._plain[(id(context), key)] = self._ingest.series(identity)
        return points
