"""Read models built in bulk for listings are indistinguishable from ones made by calling the class."""

from __future__ import annotations

import dataclasses
import gc
import pickle

import pytest

from contexta.query import RunRecord, StageRecord
from contexta.query._bulk import build_many, collection_paused

RUN_ROW = (
    "run:p.r1",
    "p",
    "r1",
    "completed",
    "2026-01-01T00:00:00Z",
    None,
    {"seed": 1},
    None,
    "dataset:p.d",
    "abc123",
    {"lr": 0.1},
    None,
)


def test_bulk_built_records_equal_hash_and_print_like_called_ones() -> None:
    (built,) = build_many(RunRecord, [RUN_ROW])
    called = RunRecord(*RUN_ROW)
    assert type(built) is RunRecord
    assert built == called
    assert repr(built) == repr(called)
    assert built.to_dict() == called.to_dict()
    assert pickle.loads(pickle.dumps(built)) == called
    assert dataclasses.replace(built, status="failed") == dataclasses.replace(called, status="failed")


def test_bulk_built_records_stay_frozen() -> None:
    (built,) = build_many(RunRecord, [RUN_ROW])
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.status = "failed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del built.name


def test_bulk_build_fills_defaults_and_keeps_order() -> None:
    rows = [
        ("stage:p.r1.train", "train", "completed", "t0"),
        ("stage:p.r1.eval", "eval", "open", "t1", None, 2),
    ]
    built = build_many(StageRecord, rows)
    assert built == [
        StageRecord("stage:p.r1.train", "train", "completed", "t0"),
        StageRecord("stage:p.r1.eval", "eval", "open", "t1", None, 2),
    ]
    assert built[0].order is None and built[1].order == 2


def test_bulk_build_refuses_a_model_it_cannot_reclass() -> None:
    @dataclasses.dataclass
    class Plain:
        value: int

    with pytest.raises(TypeError, match="frozen slots dataclass"):
        build_many(Plain, [(1,)])


def test_collection_pauses_nest_and_give_back_the_collector_as_found() -> None:
    assert gc.isenabled()
    with collection_paused():
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()


def test_collector_is_on_after_a_listing_that_raised() -> None:
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("query failed")
    assert gc.isenabled()
