"""The chunks of chosen series one at a time, for readers that skip most points (charts).

`load_columns` decodes every point of a series into memory; a chart of a 10,000,000-point series
needs the summaries of all its chunks (`_chunk_summary.py`) and the points of a few. So here each
chunk is its summary row first, and a column is read from the database and decoded only when asked
for, then kept for the chunk's lifetime (one chunk at a time: memory stays bounded by a chunk).
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeAlias

import orjson

from contexta.contract._timestamps import parse_timestamp
from contexta.store._chunk_codec import LazyColumn, column_progression, read_column
from contexta.store._chunk_summary import ChunkSummary, read_summary, summarize
from contexta.store._metric_chunks import POSITION_TYPE
from contexta.store._metric_points import SeriesRow

__all__ = ["Column", "StoredChunk", "stored_chunks"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A column as a reader walks it: `[i]`, `len()`, and `slice(start, stop)` on a LazyColumn (whose
# bytes are un-shuffled only where asked), slicing on an array (a column decoded whole).
Column: TypeAlias = "LazyColumn | array[Any]"
# A steps column kept as a progression is 17 bytes: it comes with the summary, not by its own query.
_SHORT_STEPS = 17


class StoredChunk:
    """One stored chunk of a series: its summary now, its columns when first asked for."""

    __slots__ = (
        "_columns",
        "_connection",
        "_summary",
        "chunk_id",
        "count",
        "encoding",
        "seq_base",
        "series_index",
        "typecode",
    )

    def __init__(
        self,
        connection: sqlite3.Connection,
        row: tuple[Any, ...],
        series_index: int,
        typecode: str,
    ):
        self._connection = connection
        self.chunk_id, self.seq_base, self.count, self.encoding, blob, steps = row
        self.series_index = series_index  # index into the series rows the chunks were asked for
        self.typecode = typecode  # of the values: "d" or "q"
        self._columns: dict[str, Any] = {} if steps is None else {"steps": steps}
        self._summary = None if blob is None else read_summary(blob, typecode)

    @property
    def summary(self) -> ChunkSummary:
        """The stored summary; for a chunk written before schema 6, computed from its columns."""
        if self._summary is None:
            observed = self.observed_ns() if self._blob("explicit") is None else None
            blob = summarize(self.values(), self.steps(), observed).blob
            self._summary = read_summary(blob, self.typecode)
        return self._summary

    def _blob(self, column: str) -> Any:
        if column not in self._columns:
            (self._columns[column],) = self._connection.execute(
                f"SELECT {column} FROM metric_chunks WHERE chunk_id = ?", (self.chunk_id,)
            ).fetchone()
        return self._columns[column]

    def _decoded(self, column: str, typecode: str) -> array[Any]:
        key = f"decoded:{column}"
        if key not in self._columns:
            self._columns[key] = read_column(self.encoding, typecode, self._blob(column), self.count)
        return self._columns[key]  # type: ignore[no-any-return]

    def values(self) -> array[Any]:
        return self._decoded("point_values", self.typecode)

    def _lazy(self, column: str, typecode: str) -> LazyColumn:
        key = f"lazy:{column}"
        if key not in self._columns:
            self._columns[key] = LazyColumn(self.encoding, typecode, self._blob(column), self.count)
        return self._columns[key]  # type: ignore[no-any-return]

    def value_column(self) -> Column:
        """The values, un-shuffled where read (see `LazyColumn`)."""
        return self._lazy("point_values", self.typecode)

    def x_column(self, time: bool) -> Column:
        """Observation times in epoch ns (`time`), or steps, un-shuffled where read."""
        if not time:
            return self._lazy("steps", "q")
        if self._blob("explicit") is not None:
            return self.observed_ns()
        return self._lazy("observed_ns", "q")

    def seq_at(self, offset: int) -> int:
        """The capture position (seq) of the point at `offset`: what orders points of several series
        merged into one view, whose chunks interleave in capture order."""
        return int(self.seq_base) + int(self._lazy("positions", POSITION_TYPE)[offset])

    def steps(self) -> array[int]:
        """Steps, NO_STEP (-1) where a point has none."""
        return self._decoded("steps", "q")

    def step_progression(self) -> tuple[int, int] | None:
        """(start, stride) when the steps are stored as an arithmetic progression (no decoding)."""
        return column_progression(self.encoding, self._blob("steps"))

    def observed_ns(self) -> array[int]:
        """Observation times in epoch ns (hand-written points' own text, parsed)."""
        explicit = self._blob("explicit")
        if explicit is None:
            return self._decoded("observed_ns", "q")
        key = "decoded:explicit"
        if key not in self._columns:
            self._columns[key] = array(
                "q",
                [
                    (parse_timestamp(text) - _EPOCH) // _MICROSECOND * 1_000
                    for text in orjson.loads(explicit)["observed_at"]
                ],
            )
        return self._columns[key]  # type: ignore[no-any-return]

    def release(self) -> None:
        """Forget the decoded columns (the summary stays)."""
        steps = self._columns.get("steps")
        self._columns.clear()
        if steps is not None and len(steps) <= _SHORT_STEPS:
            self._columns["steps"] = steps


_MICROSECOND = datetime.resolution  # timedelta(microseconds=1)


def stored_chunks(connection: sqlite3.Connection, series_rows: list[SeriesRow]) -> Iterator[StoredChunk]:
    """The chunks of `series_rows` in storage order (by seq base, then as written), summaries only."""
    index_of = {row.series_id: index for index, row in enumerate(series_rows)}
    typecodes = {row.series_id: "d" if row.value_type == "float64" else "q" for row in series_rows}
    ids = list(index_of)
    for start in range(0, len(ids), 500):  # SQLite caps the parameters of one statement
        part = ids[start : start + 500]
        rows = connection.execute(
            "SELECT series_id, chunk_id, seq_base, point_count, encoding, summary, "
            f"CASE WHEN length(steps) <= {_SHORT_STEPS} THEN steps END FROM metric_chunks "
            f"WHERE series_id IN ({', '.join('?' * len(part))}) ORDER BY seq_base, chunk_id",
            part,
        ).fetchall()
        for series_id, *row in rows:
            yield StoredChunk(connection, tuple(row), index_of[series_id], typecodes[series_id])
