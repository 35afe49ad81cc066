"""Min/max downsampling of metric chunks into x-buckets, walking as few points as the chunks allow.

The x range `[lo, hi]` (integers: steps, or microseconds since the epoch) is cut into `width` buckets
of equal x extent: x falls in bucket `(x - lo) * width // (hi - lo + 1)`, integer arithmetic, so a
brute-force reference computes the very same buckets. Each bucket keeps its smallest and its largest
point (NaN left out; ties go to the smaller x, then the earlier stored) and its first NaN point (a gap
for the chart); the range's first and last points in x order are always kept.

Why it is fast: a chunk whose x values never decrease (the usual case: steps counting up, capture
times) is cut at bucket edges by bisection (or arithmetic, for steps stored as a progression), and
within a bucket its blocks' stored extremes (`store/_chunk_summary.py`) stand for their points; only
the two blocks straddling a bucket edge are walked, in Python, so ~1,500 x 512 points are touched for
any series length. A chunk out of order is walked point by point (correct, ~100x slower per point).
Chunks are handled one at a time and their columns dropped after, so memory stays one chunk.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from contexta.store import (
    STEPS_NONE,
    STEPS_SORTED,
    TIMES_KNOWN,
    TIMES_SORTED,
    Column,
    LazyColumn,
    StoredChunk,
)

__all__ = ["Downsampled", "downsample", "x_extent"]

NO_STEP = -1
Order = tuple[int, int, int]  # (seq base, chunk id, offset in the chunk): the order points were stored


class Downsampled(NamedTuple):
    """The points kept, in x order: x as the axis' integers (steps or microseconds), y as stored."""

    total: int  # points in the range
    downsampled: bool
    xs: list[int]
    ys: list[float | int]


@dataclass(slots=True)
class _Axis:
    """How x is read from a chunk: its raw column is steps (scale 1) or epoch ns (scale 1,000, so x
    is microseconds: the precision `observed_at` has)."""

    time: bool
    scale: int = field(init=False)

    def __post_init__(self) -> None:
        self.scale = 1_000 if self.time else 1

    def sorted(self, chunk: StoredChunk) -> bool:
        flags = chunk.summary.flags
        return bool(flags & TIMES_SORTED) if self.time else bool(flags & STEPS_SORTED)

    def extent(self, chunk: StoredChunk) -> tuple[int, int] | None:
        """The chunk's smallest and largest x; None when no point of it has one."""
        summary = chunk.summary
        if self.time:
            if summary.flags & TIMES_KNOWN:
                return summary.ns_min // 1_000, summary.ns_max // 1_000
            raw = chunk.observed_ns()  # hand-written points: their own times
            return min(raw) // 1_000, max(raw) // 1_000
        if summary.flags & STEPS_NONE:
            return None
        return summary.step_min, summary.step_max

    def raw(self, chunk: StoredChunk) -> array[int]:
        return chunk.observed_ns() if self.time else chunk.steps()


class _Sorted:
    """A sorted chunk's x: where the first point at or past an x is, and the x of a point. The column
    is asked of the chunk each time, never kept: a released chunk lets its columns go."""

    def __init__(self, axis: _Axis, chunk: StoredChunk):
        self.chunk = chunk
        self.count: int = chunk.count
        self.time, self.scale = axis.time, axis.scale
        self.progression = None if axis.time else chunk.step_progression()

    def position(self, x: int) -> int:
        """The first offset whose x is >= `x`."""
        if self.progression is not None:
            start, stride = self.progression
            if stride == 0 or x <= start:
                return 0 if x <= start else self.count
            return min(self.count, -((start - x) // stride))  # ceil((x - start) / stride)
        return bisect_left(self.chunk.x_column(self.time), x * self.scale)

    def x(self, offset: int) -> int:
        if self.progression is not None:
            return self.progression[0] + self.progression[1] * offset
        return int(self.chunk.x_column(self.time)[offset]) // self.scale


class _Buckets:
    """Per bucket: the smallest and largest point as (value, x, order), the first NaN as (x, order)."""

    def __init__(self, lo: int, hi: int, width: int):
        self.lo, self.span, self.width = lo, hi - lo + 1, width
        self.mins: list[tuple[Any, int, Order] | None] = [None] * width
        self.maxs: list[tuple[Any, int, Order] | None] = [None] * width
        self.nans: list[tuple[int, Order] | None] = [None] * width

    def of(self, x: int) -> int:
        return (x - self.lo) * self.width // self.span

    def edge(self, bucket: int) -> int:
        """The smallest x of `bucket`."""
        return self.lo - (-(bucket * self.span) // self.width)

    def offer(self, bucket: int, value: Any, x: int, order: Order) -> None:
        if value != value:  # noqa: PLR0124 (NaN)
            nan = self.nans[bucket]
            if nan is None or (x, order) < nan:
                self.nans[bucket] = (x, order)
            return
        low = self.mins[bucket]
        if low is None or value < low[0] or (value == low[0] and (x, order) < low[1:]):
            self.mins[bucket] = (value, x, order)
        high = self.maxs[bucket]
        if high is None or value > high[0] or (value == high[0] and (x, order) < high[1:]):
            self.maxs[bucket] = (value, x, order)


def x_extent(chunks: Sequence[StoredChunk], time: bool) -> tuple[int, int] | None:
    """The smallest and largest x among the chunks' points (None when none has an x)."""
    axis = _Axis(time)
    extents = [extent for chunk in chunks if (extent := axis.extent(chunk)) is not None]
    if not extents:
        return None
    return min(low for low, _ in extents), max(high for _, high in extents)


def downsample(chunks: Sequence[StoredChunk], time: bool, lo: int, hi: int, width: int) -> Downsampled:
    """The points of `chunks` with x in `[lo, hi]`: all of them when they are at most `2 * width`,
    else the kept points of `width` buckets (see the module docstring)."""
    axis = _Axis(time)
    windows: list[tuple[StoredChunk, _Sorted | None, int, int]] = []  # sorted: [i0, i1) in range
    total = 0
    for chunk in chunks:
        extent = axis.extent(chunk)
        if extent is None or extent[1] < lo or extent[0] > hi:
            continue
        if axis.sorted(chunk):
            located = _Sorted(axis, chunk)
            i0 = 0 if extent[0] >= lo else located.position(lo)
            i1 = chunk.count if extent[1] <= hi else located.position(hi + 1)
            if i0 < i1:
                windows.append((chunk, located, i0, i1))
                total += i1 - i0
        else:
            inside = sum(1 for x, _ in _unsorted_points(axis, chunk) if lo <= x <= hi)
            if inside:
                windows.append((chunk, None, 0, chunk.count))
                total += inside
        chunk.release()
    if total <= 2 * width:
        return _everything(axis, windows, lo, hi, total)
    buckets = _Buckets(lo, hi, width)
    ends = _Ends()
    for chunk, xs, i0, i1 in windows:
        base = (chunk.seq_base, chunk.chunk_id)
        if xs is None:
            values = chunk.values()
            for x, offset in _unsorted_points(axis, chunk):
                if lo <= x <= hi:
                    buckets.offer(buckets.of(x), values[offset], x, (*base, offset))
                    ends.offer(x, (*base, offset), chunk)
        else:
            _sorted_chunk(buckets, chunk, xs, i0, i1)
            ends.offer(xs.x(i0), (*base, i0), chunk)
            ends.offer(xs.x(i1 - 1), (*base, i1 - 1), chunk)
        chunk.release()
    return _kept(buckets, ends.first(), ends.last(), total)


class _Ends:
    """The range's first and last points: the lowest and highest x, and among the points at that x
    the one captured first (last). Chunks of several series merged into one view interleave in
    capture order, so ties between chunks are settled by each candidate's own seq, read from the
    chunk's positions only for the few candidates at the extreme x."""

    def __init__(self) -> None:
        self._low: tuple[int, dict[int, tuple[Order, StoredChunk]]] | None = None
        self._high: tuple[int, dict[int, tuple[Order, StoredChunk]]] | None = None

    def offer(self, x: int, order: Order, chunk: StoredChunk) -> None:
        """A point at `x`; offered in storage order within each chunk."""
        if self._low is None or x < self._low[0]:
            self._low = (x, {})
        if x == self._low[0]:
            self._low[1].setdefault(chunk.chunk_id, (order, chunk))  # a chunk's earliest at that x
        if self._high is None or x > self._high[0]:
            self._high = (x, {})
        if x == self._high[0]:
            self._high[1][chunk.chunk_id] = (order, chunk)  # a chunk's latest at that x

    def first(self) -> tuple[int, Order, StoredChunk] | None:
        return self._pick(self._low, min)

    def last(self) -> tuple[int, Order, StoredChunk] | None:
        return self._pick(self._high, max)

    @staticmethod
    def _pick(
        found: tuple[int, dict[int, tuple[Order, StoredChunk]]] | None,
        choose: Callable[..., tuple[Order, StoredChunk]],
    ) -> tuple[int, Order, StoredChunk] | None:
        if found is None:
            return None
        x, candidates = found
        if len(candidates) == 1:
            ((order, chunk),) = candidates.values()
        else:
            order, chunk = choose(candidates.values(), key=lambda item: item[1].seq_at(item[0][2]))
        return x, order, chunk


def _slice(column: Column, start: int, stop: int) -> array[Any]:
    return column.slice(start, stop) if isinstance(column, LazyColumn) else column[start:stop]


def _unsorted_points(axis: _Axis, chunk: StoredChunk) -> list[tuple[int, int]]:
    """(x, offset) of every point of a chunk out of order that has an x."""
    raw, scale = axis.raw(chunk), axis.scale
    if axis.time:
        return [(value // scale, offset) for offset, value in enumerate(raw)]
    return [(value, offset) for offset, value in enumerate(raw) if value != NO_STEP]


def _everything(
    axis: _Axis, windows: list[tuple[StoredChunk, _Sorted | None, int, int]], lo: int, hi: int, total: int
) -> Downsampled:
    points: list[tuple[int, Order, Any]] = []
    for chunk, xs, i0, i1 in windows:
        base = (chunk.seq_base, chunk.chunk_id)
        values = chunk.values()
        if xs is None:
            points.extend(
                (x, (*base, offset), values[offset])
                for x, offset in _unsorted_points(axis, chunk)
                if lo <= x <= hi
            )
        else:
            points.extend((xs.x(offset), (*base, offset), values[offset]) for offset in range(i0, i1))
        chunk.release()
    points.sort(key=lambda point: point[:2])
    return Downsampled(total, False, [point[0] for point in points], [point[2] for point in points])


def _sorted_chunk(buckets: _Buckets, chunk: StoredChunk, xs: _Sorted, i0: int, i1: int) -> None:
    """Offer each bucket's extremes among offsets `[i0, i1)` of a chunk in x order."""
    last_bucket = buckets.of(xs.x(i1 - 1))
    start = i0
    while start < i1:  # bucket by bucket, skipping those without a point of this chunk
        bucket = buckets.of(xs.x(start))
        # At least one point a turn, so a summary that lied about order could not loop forever.
        end = i1 if bucket == last_bucket else max(start + 1, min(i1, xs.position(buckets.edge(bucket + 1))))
        _segment(buckets, bucket, chunk, xs, start, end)
        start = end


def _segment(buckets: _Buckets, bucket: int, chunk: StoredChunk, xs: _Sorted, start: int, end: int) -> None:
    """Offsets `[start, end)` of one bucket: whole blocks by their stored extremes, the (at most two)
    partial ones by their points."""
    summary = chunk.summary
    block, mins, maxs, nans = summary.block, summary.mins, summary.maxs, summary.nan_blocks
    low: tuple[Any, int, int] | None = None  # (value, offset or -1 - block when only the block is known)
    high: tuple[Any, int, int] | None = None
    nan_at: int | None = None  # an offset, or -1 - block
    values: Column | None = None
    for number in range(start // block, (end - 1) // block + 1):
        first, stop = number * block, min(number * block + block, chunk.count)
        if start <= first and stop <= end:  # a whole block: its stored extremes
            lowest, highest = mins[number], maxs[number]
            if nans[number] and nan_at is None:
                nan_at = -1 - number
            if lowest == lowest:  # noqa: PLR0124 (a block of NaN only has no extremes)
                if low is None or lowest < low[0]:
                    low = (lowest, -1 - number, 0)
                if high is None or highest > high[0]:
                    high = (highest, -1 - number, 0)
            continue
        if values is None:
            values = chunk.value_column()
        left, right = max(start, first), min(end, stop)
        part = _slice(values, left, right)
        if nans[number]:
            where = [offset for offset, value in enumerate(part) if value != value]  # noqa: PLR0124
            if where and nan_at is None:
                nan_at = left + where[0]
            numbers = [value for value in part if value == value]  # noqa: PLR0124
            if not numbers:
                continue
            lowest, highest = min(numbers), max(numbers)
        else:
            lowest, highest = min(part), max(part)
        if low is None or lowest < low[0]:
            low = (lowest, left + part.index(lowest), 0)
        if high is None or highest > high[0]:
            high = (highest, left + part.index(highest), 0)
    base = (chunk.seq_base, chunk.chunk_id)
    for found in (low, high):
        if found is not None:
            offset = _located(chunk, found[1], found[0], block)
            buckets.offer(bucket, found[0], xs.x(offset), (*base, offset))
    if nan_at is not None:
        offset = _located(chunk, nan_at, float("nan"), block)
        buckets.offer(bucket, float("nan"), xs.x(offset), (*base, offset))


def _located(chunk: StoredChunk, where: int, value: Any, block: int) -> int:
    """The offset of `value`'s first occurrence in the block `where` names (-1 - block), or `where`."""
    if where >= 0:
        return where
    number = -1 - where
    part = _slice(chunk.value_column(), number * block, number * block + block)
    if value != value:  # noqa: PLR0124
        return number * block + next(offset for offset, item in enumerate(part) if item != item)  # noqa: PLR0124
    return number * block + part.index(value)


def _kept(
    buckets: _Buckets,
    first: tuple[int, Order, StoredChunk] | None,
    last: tuple[int, Order, StoredChunk] | None,
    total: int,
) -> Downsampled:
    kept: dict[Order, tuple[int, Any]] = {}
    for found in (*buckets.mins, *buckets.maxs):
        if found is not None:
            kept[found[2]] = (found[1], found[0])
    for nan in buckets.nans:
        if nan is not None:
            kept[nan[1]] = (nan[0], float("nan"))
    for end in (first, last):
        if end is not None:
            x, order, chunk = end
            kept[order] = (x, chunk.value_column()[order[2]])
            chunk.release()
    ordered = sorted(kept.items(), key=lambda item: (item[1][0], item[0]))
    return Downsampled(total, True, [x for _, (x, _) in ordered], [value for _, (_, value) in ordered])
