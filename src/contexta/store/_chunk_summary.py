"""What a chart needs to know about a metric chunk without walking its points (schema 6).

A downsampled chart keeps the smallest and largest point of each of ~1,500 x-buckets. Finding them
among 10,000,000 points one Python object at a time costs ~30 ns a point (300 ms for `min` and `max`
alone), and decoding the columns is the cheap part (~8 ns a point, zstd at C speed). So each chunk
keeps, from ingest on, the smallest and largest value of every block of `BLOCK` points (NaN left out,
a flag for blocks holding one), which leaves a reader to look at the points of the two blocks that
straddle each bucket edge only; plus whether its steps and its observation times are in order (so a
bucket edge is found by bisection) and their range (so a zoom window skips chunks outside it).

Blocks rather than one summary per chunk: a stored batch holds up to ~16,000 points of a series, more
than a 1,500-pixel chart's bucket of a 10,000,000-point series (6,700), so a per-chunk summary would
leave every chunk to be walked. Where a block's extreme sits is not kept: a reader finds it with one
`index` over that block, for the two winners of each bucket only, and ingest skips a pass per point.

Chunks written before schema 6 have no summary (`summary` NULL): `summarize` is run on their decoded
columns when they are read. Reading never writes, so it is computed again at every read of them.
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import Any, NamedTuple

try:
    from contexta.store._chunk_scan import block_extremes, non_decreasing
except ImportError:  # built without a C compiler: the Python references do every chunk
    block_extremes = non_decreasing = None  # type: ignore[assignment]

__all__ = [
    "BLOCK",
    "STEPS_NONE",
    "STEPS_SORTED",
    "TIMES_KNOWN",
    "TIMES_SORTED",
    "ChunkSummary",
    "Summarized",
    "read_summary",
    "summarize",
]

BLOCK = 512  # points per block: two blocks walked per bucket edge, ~32 bytes kept per block
_VERSION = 1
# version, flags, block size, point count, smallest and largest step, earliest and latest time (ns)
_HEADER = struct.Struct("<BBHiqqqq")
NO_STEP = -1  # as in `_metric_chunks.py` (a point without a step)

STEPS_SORTED = 1  # every point has a step and they never decrease
STEPS_NONE = 2  # no point has a step
TIMES_SORTED = 4  # observation times are known and never decrease
TIMES_KNOWN = 8  # captured points: times are epoch ns (hand-written points keep their own text)


class ChunkSummary(NamedTuple):
    """A chunk's order flags, x ranges and per-block extremes (see the module docstring)."""

    points: int
    flags: int
    block: int
    step_min: int  # over the points that have a step; NO_STEP when none has
    step_max: int
    ns_min: int  # 0 when times are not known (TIMES_KNOWN unset)
    ns_max: int
    mins: array[Any]  # per block, in the values' typecode; NaN for a block of NaN only
    maxs: array[Any]
    nan_blocks: bytes  # per block, 1 when it holds a NaN


def _non_decreasing(column: array[int]) -> bool:
    """Whether the integers never decrease (in one compiled pass where built, see _chunk_scan.c)."""
    if non_decreasing is not None and column.typecode == "q":  # (steps and times: the only columns asked)
        return non_decreasing(column)
    return _non_decreasing_in_python(column)


def _non_decreasing_in_python(column: array[int]) -> bool:
    """Whether the integers never decrease. Exact; ~25 ns a point for epoch nanoseconds, which are
    compared as the doubles their bits spell (for non-negative int64 short of 0x7FF0..., that order is
    the integers' order; a NaN among them, from a negative or a huge one, sends it to the slow check),
    since Python boxes a double in half the time of a three-digit int."""
    count = len(column)
    if count < 2:
        return True
    if column[-1] < column[0]:  # the common miss, without a pass
        return False
    raw = column.tobytes()
    # Only when no integer is negative (every high byte below 0x80): the sign bit of a negative one
    # spells a negative double or NaN, and INT64_MIN spells -0.0, which compares equal to 0.0.
    if max(raw[7::8] if sys.byteorder == "little" else raw[0::8]) < 0x80:
        doubles = array("d")
        doubles.frombytes(raw)
        total = sum(doubles)
        if total == total:  # noqa: PLR0124 (no NaN)
            as_doubles = doubles.tolist()
            return as_doubles == sorted(as_doubles)
    listed = column.tolist()
    return listed == sorted(listed)


def _blocks(values: array[Any], block: int, finite: bool) -> tuple[array[Any], array[Any], bytes]:
    """Each block's smallest and largest value (NaN left out unless `finite`) and whether it holds a
    NaN: in one compiled pass where built (see _chunk_scan.c)."""
    if block_extremes is None or values.typecode not in ("d", "q"):
        return _blocks_in_python(values, block, finite)
    mins_bytes, maxs_bytes, nans = block_extremes(values, block, finite)
    mins: array[Any] = array(values.typecode)
    maxs: array[Any] = array(values.typecode)
    mins.frombytes(mins_bytes)
    maxs.frombytes(maxs_bytes)
    return mins, maxs, nans


def _blocks_in_python(values: array[Any], block: int, finite: bool) -> tuple[array[Any], array[Any], bytes]:
    """`_blocks`' reference (and its path without the compiled scan)."""
    mins: array[Any] = array(values.typecode)
    maxs: array[Any] = array(values.typecode)
    nans = bytearray((len(values) + block - 1) // block)
    for number, start in enumerate(range(0, len(values), block)):
        part = values[start : start + block]
        if not finite:
            numbers = [value for value in part if value == value]  # noqa: PLR0124 (NaN test)
            if len(numbers) < len(part):
                nans[number] = 1
                mins.append(min(numbers) if numbers else float("nan"))
                maxs.append(max(numbers) if numbers else float("nan"))
                continue
        mins.append(min(part))
        maxs.append(max(part))
    return mins, maxs, bytes(nans)


class Summarized(NamedTuple):
    """A chunk's summary as stored, and its smallest and largest value (NaN left out; None when
    every value is NaN), which the series row keeps too (schema 4)."""

    blob: bytes
    smallest: float | int | None
    largest: float | int | None


def summarize(
    values: array[Any],
    steps: array[int],
    observed_ns: array[int] | None,
    finite: bool | None = None,
    steps_progression: tuple[int, int] | None = None,
) -> Summarized:
    """The summary of a chunk's columns (`observed_ns` None for hand-written points); `finite` says
    whether the caller already knows no value is NaN or infinite (None: find out), and
    `steps_progression` the (start, stride) the steps were found to be when encoded (then their order
    needs no pass)."""
    if finite is None:
        total = sum(values)
        finite = total - total == 0  # at C speed: no NaN, no infinity (ints are always finite)
    flags = 0
    ordered = steps_progression[1] >= 0 if steps_progression is not None else _non_decreasing(steps)
    if ordered and steps[0] != NO_STEP:  # NO_STEP is below every step
        flags |= STEPS_SORTED
        step_min, step_max = steps[0], steps[-1]
    else:
        stepped = [step for step in steps if step != NO_STEP]
        if stepped:
            step_min, step_max = min(stepped), max(stepped)
        else:
            flags |= STEPS_NONE
            step_min = step_max = NO_STEP
    ns_min = ns_max = 0
    if observed_ns is not None and len(observed_ns):
        flags |= TIMES_KNOWN
        if _non_decreasing(observed_ns):
            flags |= TIMES_SORTED
            ns_min, ns_max = observed_ns[0], observed_ns[-1]
        else:
            ns_min, ns_max = min(observed_ns), max(observed_ns)
    mins, maxs, nans = _blocks(values, BLOCK, finite or values.typecode != "d")
    header = _HEADER.pack(_VERSION, flags, BLOCK, len(values), step_min, step_max, ns_min, ns_max)
    if finite or not any(nans):
        smallest, largest = min(mins), max(maxs)
    else:
        smallest, largest = _numbers_extreme(mins, min), _numbers_extreme(maxs, max)
    return Summarized(header + _little(mins) + _little(maxs) + nans, smallest, largest)


def _numbers_extreme(extremes: array[Any], pick: Any) -> float | None:
    numbers = [value for value in extremes if value == value]  # noqa: PLR0124 (NaN test)
    return pick(numbers) if numbers else None


def read_summary(blob: bytes, typecode: str) -> ChunkSummary:
    """A stored summary, with its block extremes in the values' `typecode` ("d" or "q")."""
    version, flags, block, count, step_min, step_max, ns_min, ns_max = _HEADER.unpack_from(blob)
    if version != _VERSION:
        raise ValueError(f"unknown metric chunk summary version {version}")
    blocks = (count + block - 1) // block
    offset = _HEADER.size
    width = blocks * 8
    mins = _from_little(typecode, blob[offset : offset + width])
    maxs = _from_little(typecode, blob[offset + width : offset + 2 * width])
    nans = bytes(blob[offset + 2 * width : offset + 2 * width + blocks])
    return ChunkSummary(count, flags, block, step_min, step_max, ns_min, ns_max, mins, maxs, nans)


def _little(column: array[Any]) -> bytes:
    if sys.byteorder != "little":
        column = array(column.typecode, column)
        column.byteswap()
    return column.tobytes()


def _from_little(typecode: str, blob: bytes) -> array[Any]:
    column = array(typecode)
    column.frombytes(blob)
    if sys.byteorder != "little":
        column.byteswap()
    return column
