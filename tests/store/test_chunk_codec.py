"""The column codecs of metric chunks (store/_chunk_codec.py): every column reads back exactly as it
was written, whatever its values (NaN and infinities, int64 extremes, NO_STEP, positions and steps
that are not progressions, none or one point), and a realistic series costs a fraction of the raw
arrays' 28 bytes per point."""

from __future__ import annotations

import math
import random
import sqlite3
import struct
import subprocess
import sys
import textwrap
from array import array
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contexta import Contexta
from contexta.store._chunk_codec import PROGRESSION, RAW, SHUFFLED_ZSTD, decode_column, encode_column
from contexta.store._metric_chunks import NO_STEP, POSITION_TYPE

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
FLOAT_BITS = st.integers(min_value=0, max_value=2**64 - 1).map(
    lambda bits: struct.unpack("<d", bits.to_bytes(8, "little"))[0]  # any NaN payload included
)


def _round_trip(typecode: str, values: list[Any]) -> array[Any]:
    return decode_column(typecode, encode_column(typecode, values), len(values))


@given(st.lists(st.one_of(FLOATS, FLOAT_BITS), max_size=300))
@settings(max_examples=200, deadline=None)
def test_float_columns_read_back_bit_for_bit(values: list[float]) -> None:
    assert _round_trip("d", values).tobytes() == array("d", values).tobytes()


@given(st.lists(INT64, max_size=300))
@settings(max_examples=200, deadline=None)
def test_int64_columns_read_back_exactly(values: list[int]) -> None:
    assert list(_round_trip("q", values)) == values


@given(st.lists(INT32, max_size=300))
@settings(max_examples=100, deadline=None)
def test_position_columns_read_back_exactly(values: list[int]) -> None:
    assert list(_round_trip(POSITION_TYPE, values)) == values


@given(
    start=INT64,
    stride=st.integers(min_value=-(2**40), max_value=2**40),
    count=st.integers(min_value=0, max_value=2000),
    changed=st.one_of(st.none(), st.integers(min_value=0, max_value=1999), st.just(-1)),
)
@settings(max_examples=200, deadline=None)
def test_progressions_and_near_progressions_read_back_exactly(
    start: int, stride: int, count: int, changed: int | None
) -> None:
    # Steps and positions that count up, with one point off the progression (any one, the last
    # included) or a progression that would leave int64: none is mistaken for a progression.
    values = [start + stride * index for index in range(count)]
    values = [min(max(value, -(2**63)), 2**63 - 1) for value in values]
    if changed is not None and values:
        where = changed % len(values)
        values[where] = values[where] + 1 if values[where] < 2**63 - 1 else values[where] - 1
    assert list(_round_trip("q", values)) == values


@pytest.mark.parametrize(
    ("typecode", "values", "codec"),
    [
        ("q", [], RAW),
        ("d", [], RAW),
        ("q", [7], RAW),
        ("d", [math.nan], RAW),
        ("q", list(range(10_000)), PROGRESSION),
        ("q", [NO_STEP] * 5_000, PROGRESSION),  # no point has a step
        (POSITION_TYPE, list(range(0, 3_000, 3)), PROGRESSION),  # three series interleaved in a batch
        ("q", list(range(0, 2**63 - 1, 2**52)), PROGRESSION),
        ("q", [2**63 - 1, 0, -(2**63)] * 100, SHUFFLED_ZSTD),
        ("d", [0.5] * 1_000, SHUFFLED_ZSTD),
        ("q", [1, 2, 4, 8, 16, 32, 64], RAW),  # too small to gain from compression
    ],
)
def test_each_column_takes_the_codec_that_fits_it(typecode: str, values: list[Any], codec: int) -> None:
    blob = encode_column(typecode, values)
    assert blob[0] == codec
    decoded = decode_column(typecode, blob, len(values))
    if typecode == "d":
        assert decoded.tobytes() == array("d", values).tobytes()
    else:
        assert list(decoded) == values


def test_random_doubles_that_do_not_compress_are_kept_raw_not_grown() -> None:
    rng = random.Random(7)
    values = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(4_000)]
    blob = encode_column("d", values)
    assert len(blob) <= 8 * len(values) + 1
    assert decode_column("d", blob, len(values)).tobytes() == array("d", values).tobytes()


def test_an_unknown_codec_is_refused_not_misread() -> None:
    with pytest.raises(ValueError, match="codec 9"):
        decode_column("q", bytes((9,)) + bytes(16), 2)


@pytest.mark.sqlite_only("measures the SQLite file's chunk rows directly")
def test_a_loss_series_costs_a_quarter_of_its_raw_arrays(tmp_path: Path) -> None:
    # Raw arrays cost 28 bytes per point (positions 4, times, values, steps 8 each); a loss curve of
    # noisy doubles stored in one-series batches costs about 6.6.
    points = 60_000
    rng = random.Random(3)
    loss, values = 1.0, []
    for _ in range(points):
        loss = loss * 0.99999 + rng.random() * 1e-3
        values.append(loss)
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        with ctx.run("r") as run, run.stage("train") as stage:
            for step, value in enumerate(values):
                stage.metric("loss", value, step=step)
        series = ctx.get_metric_series("r", "loss")
        assert list(series.values) == values and list(series.steps) == list(range(points))
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        (stored,) = connection.execute(
            "SELECT sum(length(positions) + length(observed_ns) + length(point_values) + length(steps)) "
            "FROM metric_chunks"
        ).fetchone()
    assert stored / points < 8


def test_listing_runs_never_imports_zstandard(tmp_path: Path) -> None:
    # zstandard costs up to ~11 ms to import: only capture and reading points need it.
    workspace = tmp_path / ".contexta"
    with (
        Contexta(workspace=workspace, config={"project_name": "p"}) as ctx,
        ctx.run("r") as run,
        run.stage("train") as stage,
    ):
        for step in range(1_000):
            stage.metric("loss", 1 / (step + 1), step=step)
    script = textwrap.dedent(
        f"""
        import sys
        from contexta.cli import main
        assert main(["runs", "--workspace", {str(workspace)!r}]) == 0
        assert "zstandard" not in sys.modules, "listing runs imported zstandard"
        from contexta import Workspace
        with Workspace({str(workspace)!r}) as opened:
            assert len(opened.get_metric_series("r", "loss").values) == 1_000
        assert "zstandard" in sys.modules, "points were read without decoding them"
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
