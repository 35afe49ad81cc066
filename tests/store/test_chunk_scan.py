"""The compiled scans of a chunk's columns (`store/_chunk_scan.c`) give exactly what their Python
references give: the progression check and the order check the chunk encoder and summary use, and
each block's extremes that charts read. A difference here would store a wrong chunk or summary."""

from __future__ import annotations

import math
import struct
from array import array
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contexta.store import _chunk_codec, _chunk_summary

scan = pytest.importorskip("contexta.store._chunk_scan")

_INT64 = st.integers(-(2**63), 2**63 - 1)
_INT32 = st.integers(-(2**31), 2**31 - 1)


@st.composite
def _integer_columns(draw: st.DrawFn) -> array[int]:
    """Progressions (the common column), near-progressions, sorted and random columns, at both widths
    and up to the edges of int64 (where a stride overflows)."""
    typecode = draw(st.sampled_from("qi"))
    numbers = _INT64 if typecode == "q" else _INT32
    shape = draw(st.sampled_from(["progression", "nudged", "sorted", "random"]))
    count = draw(st.integers(0, 40))
    if shape in ("progression", "nudged") and count:
        start = draw(numbers)
        stride = draw(st.one_of(st.integers(-3, 3), numbers))
        values = [start + stride * index for index in range(count)]
        low, high = (-(2**63), 2**63 - 1) if typecode == "q" else (-(2**31), 2**31 - 1)
        values = [min(max(value, low), high) for value in values]  # clipped at the edge: no longer one
        if shape == "nudged":
            index = draw(st.integers(0, count - 1))
            values[index] = min(max(values[index] + draw(st.sampled_from([-1, 1])), low), high)
    else:
        values = draw(st.lists(numbers, min_size=count, max_size=count))
        if shape == "sorted":
            values.sort()
    return array(typecode, values)


@settings(max_examples=500, deadline=None)
@given(column=_integer_columns())
def test_the_compiled_progression_check_gives_the_reference_answer(column: array[int]) -> None:
    assert scan.progression(column) == _chunk_codec._progression_in_python(column)


@settings(max_examples=500, deadline=None)
@given(column=_integer_columns())
def test_the_compiled_order_check_gives_the_reference_answer(column: array[int]) -> None:
    column = array("q", column)  # the reference reads int64 columns: steps and times
    assert scan.non_decreasing(column) == _chunk_summary._non_decreasing_in_python(column)


def _bits(column: array[Any]) -> list[Any]:
    """Each value's bits (so -0.0 and 0.0 differ), every NaN as one token."""
    if column.typecode != "d":
        return list(column)
    return ["nan" if math.isnan(value) else struct.pack("<d", value) for value in column]


_odd_doubles = st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -1e308])


@settings(max_examples=500, deadline=None)
@given(
    values=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), _odd_doubles), max_size=60),
    block=st.integers(1, 9),
)
def test_the_compiled_block_extremes_of_doubles_are_the_reference_ones(
    values: list[float], block: int
) -> None:
    """NaN left out of a block's extremes (a block of NaN only gets NaN), infinities kept, and of
    equal values the first kept, as min() and max() do (0.0 and -0.0 keep their order)."""
    column = array("d", values)
    finite_runs = [True, False] if all(math.isfinite(value) for value in values) else [False]
    for finite in finite_runs:
        got = _chunk_summary._blocks(column, block, finite)
        want = _chunk_summary._blocks_in_python(column, block, finite)
        assert (_bits(got[0]), _bits(got[1]), got[2]) == (_bits(want[0]), _bits(want[1]), want[2])


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_INT64, max_size=60), block=st.integers(1, 9))
def test_the_compiled_block_extremes_of_integers_are_the_reference_ones(
    values: list[int], block: int
) -> None:
    column = array("q", values)
    assert _chunk_summary._blocks(column, block, True) == _chunk_summary._blocks_in_python(
        column, block, True
    )


def test_a_column_the_scans_cannot_read_is_refused_not_misread() -> None:
    for column in (array("h", [1, 2, 3]), array("d", [1.0, 2.0]), b"12345678"):
        with pytest.raises(TypeError):
            scan.progression(column)
    with pytest.raises(TypeError):
        scan.block_extremes(array("i", [1, 2]), 2, True)
    with pytest.raises(ValueError, match="block"):
        scan.block_extremes(array("d", [1.0]), 0, True)


@pytest.mark.parametrize(
    "numbers",
    [
        [-(2**63), 2**63 - 1],  # a stride past int64: not a progression the codec can keep
        [2**63 - 1, -(2**63)],
        [-(2**63), 0, 2**63 - 1],
        [2**63 - 1, 2**63 - 1, 2**63 - 1],
    ],
)
def test_the_progression_check_at_the_edges_of_int64(numbers: list[int]) -> None:
    column = array("q", numbers)
    assert scan.progression(column) == _chunk_codec._progression_in_python(column)


@pytest.mark.parametrize(
    ("numbers", "ordered"),
    [
        ([0, -(2**63), 2**62, 2**62], False),  # INT64_MIN's bits spell -0.0, equal to 0.0
        ([5, -(2**63)], False),
        ([-(2**63), 0, 2**63 - 1], True),
        ([2**62, 2**63 - 1, 2**63 - 1], True),
    ],
)
def test_the_order_check_at_the_edges_of_int64(numbers: list[int], ordered: bool) -> None:
    column = array("q", numbers)
    assert _chunk_summary._non_decreasing_in_python(column) is ordered
    assert scan.non_decreasing(column) is ordered
