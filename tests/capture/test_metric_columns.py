"""The store sink's split of a batch into series columns: the compiled pass (`_metric_columns.c`)
gives exactly the columns the Python reference gives, for every batch, and declines (leaving the
batch to the point-by-point loop) exactly where the reference does."""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contexta.capture._items import METRIC, ScopeContext
from contexta.capture._sinks import _store
from contexta.store import SeriesIdentity, SeriesPoints

compiled = pytest.importorskip("contexta.capture._metric_columns")

_CONTEXTS = [
    tuple(ScopeContext("stage", f"stage:p.r.s{n}", f"s{n}", "p", "run:p.r", "run:p.r", f"stage:p.r.s{n}"))
    for n in range(3)
]


class _Ingest:
    """Collects the series a MetricColumns appends to, as the store's IngestBatch would."""

    def __init__(self) -> None:
        self.groups: dict[SeriesIdentity, SeriesPoints] = {}

    def series(self, identity: SeriesIdentity) -> SeriesPoints:
        return self.groups.setdefault(identity, SeriesPoints(identity, explicit=False))


def _grouped(ingest: _Ingest) -> dict[Any, Any]:
    """Each series' columns as lists (NaN as a token, so equal columns compare equal)."""
    return {
        identity: (
            list(points.positions),
            list(points.observed),
            [("nan" if math.isnan(value) else value) for value in points.values],
            list(points.steps),
        )
        for identity, points in ingest.groups.items()
    }


def _columns(items: list[Any], start: int, stop: int, *, use_c: bool) -> dict[Any, Any] | None:
    """The columns `_add_plain_runs` builds, or None when it declines the batch."""
    ingest = _Ingest()
    columns = _store.MetricColumns(ingest, _store.SeriesIdentities())  # type: ignore[arg-type]
    if use_c:
        taken = columns._add_plain_runs(items, start, stop)
    else:
        taken = columns._add_plain_runs_in_python(items, start, stop)
    if not taken:
        return None
    return _grouped(ingest)


_plain_value = st.floats(allow_nan=True, allow_infinity=True)
_odd_value = st.one_of(st.integers(-(2**63), 2**63 - 1), st.booleans())


@st.composite
def _items(draw: st.DrawFn) -> list[Any]:
    """A batch of METRIC tuples: mostly plain, with runs of one series, and now and then one that
    is not plain (an int value, a unit, a tag, another scope, a non-int step, another kind)."""
    count = draw(st.integers(1, 60))
    items: list[Any] = []
    context, key = draw(st.sampled_from(_CONTEXTS)), draw(st.sampled_from(["loss", "acc"]))
    for position in range(count):
        if draw(st.integers(0, 9)) == 0:
            context, key = draw(st.sampled_from(_CONTEXTS)), draw(st.sampled_from(["loss", "acc", "lr"]))
        value: Any = draw(_plain_value)
        unit, scope, tags, kind = None, "step", None, METRIC
        step: Any = draw(st.one_of(st.none(), st.integers(0, 2**62)))
        odd = draw(st.integers(0, 40))
        if odd == 1:
            value = draw(_odd_value)
        elif odd == 2:
            unit = "ms"
        elif odd == 3:
            scope = "epoch"
        elif odd == 4:
            tags = {"split": "val"}
        elif odd == 5:
            step = True
        elif odd == 6:
            kind = 2
        items.append(
            (kind, 1_700_000_000_000_000_000 + position, context, key, value, unit, step, scope, tags)
        )
    return items


@settings(max_examples=400, deadline=None)
@given(items=_items(), cut=st.tuples(st.integers(0, 5), st.integers(0, 5)))
def test_the_compiled_split_gives_the_reference_columns_or_declines_where_it_does(
    items: list[Any], cut: tuple[int, int]
) -> None:
    start, stop = min(cut[0], len(items) - 1), max(len(items) - cut[1], 1)
    if start >= stop:
        start, stop = 0, len(items)
    compiled_columns = _columns(items, start, stop, use_c=True)
    reference = _columns(items, start, stop, use_c=False)
    if compiled_columns is None:
        # Declining is always safe (the point-by-point loop takes the batch). The compiled pass
        # declines a batch the reference takes only for a bool step, or a tuple of another kind
        # (which never reaches the store sink raw: the writer builds entries of every other kind).
        if reference is not None:
            assert any(type(item[6]) is bool or item[0] != METRIC for item in items[start:stop])
        return
    assert compiled_columns == reference


def test_one_series_of_plain_floats_is_taken_in_one_run() -> None:
    items = [(METRIC, 10 + n, _CONTEXTS[0], "loss", 1.0 / (n + 1), None, n, "step", None) for n in range(100)]

    split = compiled.plain_metric_columns(items, 0, 100)
    assert split[0] == [0] and split[4:] == (True, 0)
    columns = _columns(items, 0, 100, use_c=True)
    assert columns is not None
    ((positions, observed, values, steps),) = columns.values()
    assert positions == list(range(100)) and steps == list(range(100))
    assert observed == [10 + n for n in range(100)] and values[3] == 0.25


@pytest.mark.parametrize(
    "odd",
    [
        (METRIC, 1, _CONTEXTS[0], "loss", 1, None, 0, "step", None),  # an int value
        (METRIC, 1, _CONTEXTS[0], "loss", 1.0, "ms", 0, "step", None),  # a unit
        (METRIC, 1, _CONTEXTS[0], "loss", 1.0, None, 0, "epoch", None),  # another scope
        (METRIC, 1, _CONTEXTS[0], "loss", 1.0, None, 0, "step", {"a": "b"}),  # tags
        (METRIC, 1, _CONTEXTS[0], "loss", 1.0, None, 0.5, "step", None),  # a float step
        (METRIC, 2**64, _CONTEXTS[0], "loss", 1.0, None, 0, "step", None),  # a time past int64
        (2, 1, _CONTEXTS[0], "loss", 1.0, None, 0, "step", None),  # another kind
        [METRIC, 1, _CONTEXTS[0], "loss", 1.0, None, 0, "step", None],  # not a tuple
    ],
)
def test_one_item_that_is_not_plain_sends_the_batch_to_the_python_path(odd: Any) -> None:
    items = [(METRIC, 1, _CONTEXTS[0], "loss", 0.5, None, n, "step", None) for n in range(10)]
    items[4] = odd

    assert compiled.plain_metric_columns(items, 0, 10) is None
    assert compiled.plain_metric_columns(items, 5, 10) is not None  # the odd one is outside


_KIND_ITEMS = st.one_of(
    st.builds(lambda n: (METRIC, n, _CONTEXTS[0], "loss", 0.5, None, n, "step", None), st.integers(0, 9)),
    st.builds(
        lambda keys: (2, 1, _CONTEXTS[0], tuple((key, 1.0) for key in keys), None),
        st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
    ),
    st.just((7, 1, None, object())),  # a flush barrier
)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(_KIND_ITEMS, max_size=40))
def test_the_compiled_counts_of_queued_items_match_the_reference(items: list[Any]) -> None:
    from contexta.capture import _items

    reference = sum(_items.records_of(item) for item in items)
    assert compiled.record_count(items) == reference == _items.record_count(items)
    assert compiled.has_barrier(items) == (7 in [item[0] for item in items]) == _items.holds_barrier(items)


class _TupleKind(tuple):  # type: ignore[type-arg]
    """A tuple subclass: never a queued item, so never counted as one."""


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(
        st.one_of(_KIND_ITEMS, st.builds(object), st.builds(lambda: _TupleKind((1, 2))), st.just([1])),
        max_size=40,
    )
)
def test_the_compiled_only_tuples_matches_the_set_of_types(items: list[Any]) -> None:
    from contexta.capture import _items

    reference = set(map(type, items)) <= {tuple}
    assert compiled.only_tuples(items) == reference == _items.only_tuples(items)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(
        st.one_of(
            _KIND_ITEMS,
            st.builds(object),
            st.just(()),
            st.just(("1", 2)),  # a kind that is not an int
            st.just((2**70, 1)),  # nor one that fits
            st.builds(lambda: _TupleKind((METRIC, 2))),
        ),
        max_size=40,
    )
)
def test_the_compiled_only_metrics_matches_the_reference(items: list[Any]) -> None:
    """The writer passes a batch through unbuilt only when every item is a METRIC tuple."""
    from contexta.capture import _items

    reference = all(type(item) is tuple and len(item) and item[0] == METRIC for item in items)
    assert compiled.only_metrics(items) == reference == _items.only_metrics(items)


@settings(max_examples=400, deadline=None)
@given(
    items=st.lists(
        st.one_of(
            _KIND_ITEMS,
            _KIND_ITEMS,
            st.just((3, 1, _CONTEXTS[0])),  # an event: one record, not a metric
            st.builds(object),
            st.just(()),
            st.just((2, 1)),  # a metrics() item too short to hold its pairs
            st.just((2, 1, None, 5)),  # pairs without a length
            st.just((2**70, 1)),
            st.builds(lambda: _TupleKind((METRIC, 2))),
        ),
        max_size=40,
    )
)
def test_the_writers_one_pass_gives_the_three_answers_it_asked_one_by_one(items: list[Any]) -> None:
    # The writer's take reads QueuedFacts in one pass (issue 16): the count of records, whether a
    # flush barrier is there, whether all are single metrics, each as its own function says; an item
    # the count cannot read sends all three to those functions.
    from contexta.capture import _items

    counted = compiled.record_count(items)
    facts = compiled.queued_facts(items)
    if counted is None:
        assert facts is None
        return
    others = [position for position, item in enumerate(items) if item[0] != METRIC]
    expected = (
        counted,
        compiled.has_barrier(items),
        compiled.only_metrics(items),
        others if len(others) <= len(items) // 8 else None,
    )
    assert facts == expected
    assert tuple(_items.queued_facts(items)) == expected
    assert counted == sum(_items.records_of(item) for item in items)


@settings(max_examples=300, deadline=None)
@given(
    metrics=st.integers(0, 120),
    others=st.lists(
        st.tuples(
            st.integers(0, 120),
            st.sampled_from(
                [
                    (2, 1, _CONTEXTS[0], (("a", 1.0), ("b", 2.0)), None, 4),  # a metrics() call: two records
                    (3, 1, ScopeContext(*_CONTEXTS[1]), "epoch", "done", "info", None),  # an event
                ]
            ),
        ),
        max_size=6,
    ),
)
def test_a_batch_with_a_few_other_items_builds_as_it_does_item_by_item(
    metrics: int, others: list[tuple[int, tuple[Any, ...]]]
) -> None:
    # The writer copies the runs of single metrics between the few other items of a batch whole, at
    # the positions its one pass found: the batch's items come out as building each in turn gives.
    from contexta.capture import _items
    from contexta.capture._log._builder import EntryBuilder

    queued: list[Any] = [
        (METRIC, n, _CONTEXTS[0], "loss", 0.5, None, n, "step", None) for n in range(metrics)
    ]
    for position, item in sorted(others, reverse=True):
        queued.insert(min(position, len(queued)), item)
    facts = _items.queued_facts(queued)
    by_positions: list[Any] = []
    one_by_one: list[Any] = []
    builder = EntryBuilder()
    builder.begin()
    builder.build(queued, by_positions, all_metrics=facts.only_metrics, others=facts.others)
    builder.build(queued, one_by_one, all_metrics=False, others=None)
    assert by_positions == one_by_one
    assert len(one_by_one) == facts.records


def test_a_burst_of_single_metrics_passed_through_as_taken_reaches_the_sinks_whole_and_in_order(
    tmp_path: Path,
) -> None:
    # The writer hands the lanes the very list it took as the batch's items (no copy), and adds a
    # degraded marker to it when records were lost: what the sinks get is still every metric, in order.
    from contexta import Contexta
    from contexta.capture import InMemorySink

    memory = InMemorySink()
    ctx = Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}, sinks=[memory])
    with ctx.run("r") as run, run.stage("s") as stage:
        ctx.flush()
        for step in range(40_000):
            stage.metric("loss", step / 3, step=step)
    ctx.close()
    points = [
        (model.payload.step, model.payload.value)
        for model in memory.records()
        if type(model).__name__ == "MetricRecord"
    ]
    assert points == [(step, step / 3) for step in range(40_000)]


@settings(max_examples=200, deadline=None)
@given(queued=st.integers(0, 50), count=st.integers(0, 60))
def test_the_compiled_pop_left_takes_what_islice_takes_in_order(queued: int, count: int) -> None:
    from itertools import islice

    first, second = deque(range(queued)), deque(range(queued))
    if count > queued:  # both say the deque ran out, as the writer's take never lets happen
        with pytest.raises(IndexError):
            compiled.pop_left(first.popleft, count)
        with pytest.raises(IndexError):
            list(islice(iter(second.popleft, None), count))
        return
    assert compiled.pop_left(first.popleft, count) == list(islice(iter(second.popleft, None), count))
    assert first == second  # the rest stays queued, in order


def test_pop_left_takes_through_any_callable_not_only_a_deque_popleft() -> None:
    # deque.popleft is called through its C function; anything else through the call protocol
    source = iter(["a", "b", "c"])
    assert compiled.pop_left(source.__next__, 2) == ["a", "b"]
    assert compiled.pop_left([1, 2, 3].pop, 2) == [3, 2]
    assert compiled.pop_left(deque([1, 2]).popleft, 0) == []
    assert compiled.pop_left(deque([1, 2]).popleft, -1) == []


def test_pop_left_passes_on_an_error_other_than_an_empty_deque() -> None:
    def broken() -> Any:
        raise ValueError("not a deque")

    with pytest.raises(ValueError, match="not a deque"):
        compiled.pop_left(broken, 3)


def test_an_item_the_compiled_count_cannot_read_leaves_it_to_the_reference() -> None:
    assert compiled.record_count([(METRIC,), ["not", "a", "tuple"]]) is None
    assert compiled.record_count([]) == 0


class _Entry:
    """Stands for a built entry (a scope opening, the environment snapshot) among the metric tuples."""


def _added(items: list[Any], *, whole: bool) -> dict[Any, Any]:
    """The series columns `add` builds from the batch, or (`whole`) the point-by-point loop alone."""
    ingest = _Ingest()
    columns = _store.MetricColumns(ingest, _store.SeriesIdentities())  # type: ignore[arg-type]
    if whole:
        columns._add_points(items, 0, len(items))
    else:
        columns.add(items, 0, len(items))
    return _grouped(ingest)


@settings(max_examples=300, deadline=None)
@given(items=_items(), entries=st.lists(st.integers(0, 60), max_size=4))
def test_entries_among_the_tuples_leave_the_columns_those_of_the_point_by_point_loop(
    items: list[Any], entries: list[int]
) -> None:
    """A burst's first batches hold a scope opening or two among thousands of metric tuples; the runs
    of tuples around them go column by column, and the store gets exactly the same points."""
    items = [item for item in items if item[0] == METRIC]  # the writer builds entries of other kinds
    for position in sorted(entries, reverse=True):
        items.insert(min(position, len(items)), _Entry())
    assert _added(items, whole=False) == _added(items, whole=True)


def test_a_burst_batch_with_a_scope_opening_in_it_is_split_around_it_at_c_speed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items: list[Any] = [
        (METRIC, 10 + n, _CONTEXTS[0], "loss", 1.0 / (n + 1), None, n, "step", None) for n in range(1000)
    ]
    items[0:0] = [_Entry(), _Entry()]
    items.insert(500, _Entry())
    one_by_one: list[int] = []
    point_loop = _store.MetricColumns._add_points

    def counted(self: Any, batch: list[Any], start: int, stop: int) -> None:
        one_by_one.append(stop - start)
        point_loop(self, batch, start, stop)

    monkeypatch.setattr(_store.MetricColumns, "_add_points", counted)
    ((positions, _, values, steps),) = _added(items, whole=False).values()
    assert one_by_one == []  # no point went through the Python loop
    assert steps == list(range(1000)) and values[3] == 0.25
    assert positions == [p for p in range(len(items)) if not isinstance(items[p], _Entry)]


def test_a_batch_larger_than_a_piece_gives_the_columns_of_the_point_by_point_loop() -> None:
    """The store sink adds a batch a piece at a time (making way for the caller between pieces): runs
    of one series that cross a piece's edge, an entry right at an edge and a non-plain point in the
    next piece still give exactly the points the point-by-point loop gives, in order."""
    piece = _store._PIECE
    items: list[Any] = []
    for n in range(3 * piece + 123):
        context = _CONTEXTS[(n // 3000) % 2]  # runs of 3,000 of one series, crossing each edge
        items.append((METRIC, 10 + n, context, "loss", n / 7, None, n, "step", None))
    items[piece - 1] = _Entry()
    items.insert(piece, _Entry())
    odd = list(items[piece + 10])
    odd[4] = 12  # an int value: not a plain point
    items[piece + 10] = tuple(odd)
    added = _added(items, whole=False)
    assert added == _added(items, whole=True)
    assert sum(len(positions) for positions, _, _, _ in added.values()) == len(items) - 2


def test_the_store_sink_makes_way_for_the_caller_between_the_pieces_of_a_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every piece taking a whole slice (a clock that jumps), a 16,384-point batch lets go of the
    GIL between its pieces: a capturing thread waits for one piece, never for the whole batch."""
    import contexta._courtesy as courtesy

    clock = iter(range(0, 10**12, courtesy.SLICE_NS))
    pauses: list[float] = []
    monkeypatch.setattr(courtesy.time, "perf_counter_ns", lambda: next(clock))
    monkeypatch.setattr(courtesy.time, "sleep", pauses.append)
    courtesy.new_slice()  # this thread's slice starts on the jumping clock
    items = [(METRIC, 10 + n, _CONTEXTS[0], "loss", n / 3, None, n, "step", None) for n in range(16_384)]
    _added(items, whole=False)
    assert len(pauses) == 16_384 // _store._PIECE and set(pauses) == {0}
