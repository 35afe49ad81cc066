"""How one column of a metric chunk is laid out in its blob (schema 3 chunks; see `_schema.py`).

Raw little-endian arrays cost 28 bytes per scalar point (positions 4, observation times, values and
steps 8 each), more than the rest of the workspace together. Measured on a 1M-point loss series
(chunks of ~16,000 points): positions and steps are arithmetic progressions almost always (one
series per batch: positions 0, 1, 2...; steps counting up, or all NO_STEP), so they are kept as
(start, stride), 17 bytes per chunk whatever its length. Observation times and values are
compressed with zstd after a byte shuffle (byte 0 of every element, then byte 1, ...): the high
bytes of increasing nanosecond times and of a slowly moving float barely change, and grouped they
compress to almost nothing, while the low, noisy bytes stay as they are. Times 8 -> 1.5 bytes, loss
values 8 -> 5.1 bytes, at ~4 ns per point to compress and ~6-8 to decompress. Delta-encoding the
times first would save another 0.5 bytes per point but costs ~100 ns per point in Python each way,
so it is not done.

Each encoded column starts with one byte naming its codec, so any column can fall back to the raw
array: a chunk of one point, or values that do not compress, are stored raw (plus that byte) rather
than grown. zstandard costs up to ~11 ms to import (its extension, from a cold file cache), so it
is not imported with the store: listing runs never touches a point. The write side loads it when
it is created (`load_compressor`, at the first `Contexta`), not at its first batch: that batch may
be written while an event loop closes a run, and an import then, on any thread, holds the GIL the
loop is waiting for.
"""

from __future__ import annotations

import struct
import sys
import threading
from array import array
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import zstandard

try:
    from contexta.store._chunk_scan import progression as scanned_progression
except ImportError:  # built without a C compiler: the Python reference does every column
    scanned_progression = None  # type: ignore[assignment]

__all__ = [
    "CODEC_PER_COLUMN",
    "LazyColumn",
    "column_progression",
    "decode_column",
    "encode_column",
    "load_compressor",
    "read_column",
]

_LITTLE_ENDIAN = sys.byteorder == "little"

# metric_chunks.encoding of a chunk whose columns are written by `encode_column`; NULL marks a chunk
# of schema 2, whose columns are bare little-endian arrays.
CODEC_PER_COLUMN = 1

RAW = 0  # the little-endian array
SHUFFLED_ZSTD = 1  # a zstd frame of the little-endian array, byte-shuffled by element width
PROGRESSION = 2  # integers start, start + stride, ...: start and stride as little-endian int64

_PROGRESSION_TYPECODES = frozenset("bhilqBHILQ")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Measured: levels -3 to 9 give the same size on shuffled columns (values 5.1, times 1.5-1.6 bytes
# per point); -1 is the fastest, 4 ns per point against level 3's 10, and 1.4 against 8 us for a
# 100-point column, whose hash tables level 3 clears at every call.
_ZSTD_LEVEL = -1
_SMALLEST_COMPRESSED = 64  # raw bytes; below this a zstd frame (>= 9 bytes of header) rarely wins

# 0, 1, 2... per typecode, for the positions of one-series batches (grown to the largest batch seen).
_counting: dict[str, array[Any]] = {}
_COUNTING_LIMIT = 1 << 20

_local = threading.local()  # zstd contexts are not safe to share between threads


def load_compressor() -> None:
    """Import zstandard now, before the first chunk is written (see the module docstring)."""
    import zstandard  # noqa: F401


def _compressor() -> zstandard.ZstdCompressor:
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if compressor is None:
        import zstandard  # lazily: see the module docstring

        compressor = _local.compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    decompressor: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if decompressor is None:
        import zstandard  # lazily: see the module docstring

        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return decompressor


def _little_endian(packed: array[Any]) -> bytes:
    if not _LITTLE_ENDIAN:
        packed = array(packed.typecode, packed)
        packed.byteswap()
    return packed.tobytes()


def _from_little_endian(typecode: str, blob: bytes | bytearray | memoryview) -> array[Any]:
    unpacked = array(typecode)
    unpacked.frombytes(blob)
    if not _LITTLE_ENDIAN:
        unpacked.byteswap()
    return unpacked


def _arithmetic(typecode: str, start: int, stride: int, count: int) -> array[Any]:
    """start, start + stride, ... (`count` of them) as an array, at C speed: `array(range(...))`
    converts one int at a time (~35 ns each, more than decoding the rest of a chunk), struct takes
    them all in one call (~13 ns each), and positions 0, 1, 2... are sliced from a cached array."""
    if stride == 0:
        return array(typecode, [start]) * count
    if start == 0 and stride == 1 and count <= _COUNTING_LIMIT:
        counting = _counting.get(typecode)
        if counting is None or len(counting) < count:
            counting = _counting[typecode] = array(typecode, range(max(count, 1024)))
        return counting[:count]
    return array(typecode, struct.pack(f"{count}{typecode}", *range(start, start + stride * count, stride)))


def _progression(packed: array[Any]) -> tuple[int, int] | None:
    """(start, stride) when `packed` is an arithmetic progression of two or more integers (in one
    compiled pass for the columns chunks hold, see _chunk_scan.c)."""
    if scanned_progression is not None and packed.typecode in ("q", "i"):
        return scanned_progression(packed)
    return _progression_in_python(packed)


def _progression_in_python(packed: array[Any]) -> tuple[int, int] | None:
    """`_progression`'s reference (and its path without the compiled scan, or for other typecodes)."""
    count = len(packed)
    if count < 2 or packed.typecode not in _PROGRESSION_TYPECODES:
        return None
    start, stride = packed[0], packed[1] - packed[0]
    last = start + stride * (count - 1)
    # The common miss first, without building the progression; the stride is kept as an int64 too.
    if packed[-1] != last or not _INT64_MIN <= stride <= _INT64_MAX:
        return None
    expected = _arithmetic(packed.typecode, start, stride, count)
    return (start, stride) if packed == expected else None


def _shuffle(raw: bytes, width: int) -> bytes:
    return b"".join(raw[byte::width] for byte in range(width))


def _unshuffle(shuffled: bytes, width: int) -> bytearray:
    count = len(shuffled) // width
    raw = bytearray(len(shuffled))
    for byte in range(width):
        raw[byte::width] = shuffled[byte * count : (byte + 1) * count]
    return raw


def encode_column(typecode: str, values: Any) -> bytes:
    """`values` as an array of `typecode`, in the smallest of the codecs above."""
    packed = values if type(values) is array and values.typecode == typecode else array(typecode, values)
    progression = _progression(packed)
    if progression is not None:
        return bytes((PROGRESSION,)) + _little_endian(array("q", progression))
    raw = _little_endian(packed)
    if len(raw) >= _SMALLEST_COMPRESSED:
        compressed = _compressor().compress(_shuffle(raw, packed.itemsize))
        if len(compressed) < len(raw):
            return bytes((SHUFFLED_ZSTD,)) + compressed
    return bytes((RAW,)) + raw


def decode_column(typecode: str, blob: bytes, count: int) -> array[Any]:
    """The `count` values of a column `encode_column` wrote."""
    codec, body = blob[0], memoryview(blob)[1:]
    if codec == RAW:
        return _from_little_endian(typecode, body)
    if codec == PROGRESSION:
        start, stride = _from_little_endian("q", body)
        return _arithmetic(typecode, start, stride, count)
    if codec == SHUFFLED_ZSTD:
        width = array(typecode).itemsize
        shuffled = _decompressor().decompress(body, max_output_size=count * width)
        return _from_little_endian(typecode, _unshuffle(shuffled, width))
    raise ValueError(f"unknown metric chunk column codec {codec}")


def read_column(encoding: int | None, typecode: str, blob: bytes, count: int) -> array[Any]:
    """A column of a stored chunk of `count` points, in either layout its `encoding` may name."""
    if encoding is None:
        return _from_little_endian(typecode, blob)
    if encoding == CODEC_PER_COLUMN:
        return decode_column(typecode, blob, count)
    raise ValueError(f"unknown metric chunk encoding {encoding}")


def column_progression(encoding: int | None, blob: bytes) -> tuple[int, int] | None:
    """(start, stride) of a stored column kept as an arithmetic progression, else None: a reader that
    only needs a few of its values (a chart's bucket edges among 0, 1, 2... steps) computes them."""
    if encoding != CODEC_PER_COLUMN or blob[0] != PROGRESSION:
        return None
    start, stride = _from_little_endian("q", memoryview(blob)[1:])
    return int(start), int(stride)


class LazyColumn:
    """A stored column read a range at a time, for readers that look at a few of its points.

    Decompressing a zstd column is quick (~1 ns a point); un-shuffling its bytes is not (~7 ns a
    point, 70 ms for 10,000,000 values), and a chart of a long series needs only the points around
    bucket edges. So the bytes stay shuffled and a range is un-shuffled when asked for (`slice`), one
    point by its block of `BLOCK` (`[i]`, cached: bisection probes many points of one block).
    """

    BLOCK = 512

    __slots__ = ("_blocks", "_count", "_decoded", "_shuffled", "_typecode", "_width")

    def __init__(self, encoding: int | None, typecode: str, blob: bytes, count: int):
        self._typecode, self._count = typecode, count
        self._width = array(typecode).itemsize
        self._shuffled: bytes | None = None
        self._decoded: array[Any] | None = None
        self._blocks: dict[int, array[Any]] = {}
        if encoding == CODEC_PER_COLUMN and blob[0] == SHUFFLED_ZSTD:
            self._shuffled = _decompressor().decompress(
                memoryview(blob)[1:], max_output_size=count * self._width
            )
        else:
            self._decoded = read_column(encoding, typecode, blob, count)

    def __len__(self) -> int:
        return self._count

    def slice(self, start: int, stop: int) -> array[Any]:
        """Points `[start, stop)` as an array (a range within one block is cut from that block,
        un-shuffled once for every range and point asked of it)."""
        if self._decoded is not None:
            return self._decoded[start:stop]
        start, stop = max(0, start), min(stop, self._count)
        number = start // self.BLOCK
        if stop <= start:
            return array(self._typecode)
        if (stop - 1) // self.BLOCK == number:
            first = number * self.BLOCK
            return self._block(number)[start - first : stop - first]
        return self._unshuffled(start, stop)

    def _block(self, number: int) -> array[Any]:
        part = self._blocks.get(number)
        if part is None:
            first = number * self.BLOCK
            part = self._blocks[number] = self._unshuffled(first, min(first + self.BLOCK, self._count))
        return part

    def _unshuffled(self, start: int, stop: int) -> array[Any]:
        assert self._shuffled is not None
        width, count = self._width, self._count
        shuffled = memoryview(self._shuffled)
        raw = bytearray((stop - start) * width)
        for byte in range(width):
            raw[byte::width] = shuffled[byte * count + start : byte * count + stop]
        return _from_little_endian(self._typecode, raw)

    def __getitem__(self, index: int) -> Any:
        if self._decoded is not None:
            return self._decoded[index]
        if index < 0:
            index += self._count
        number, within = divmod(index, self.BLOCK)
        return self._block(number)[within]
