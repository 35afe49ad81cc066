"""Adversarial checks of the writer's one-pass take (issue 16): the compiled take and facts, the
builder's copy of metric runs between other items, the capture log's pieces, and the metadata heads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contexta.capture._items import (
    ScopeContext,
    event_item,
    metric_item,
    metrics_item,
    queued_facts,
    scope_item,
)

compiled = pytest.importorskip("contexta.capture._metric_columns")


def test_pop_left_never_shows_a_half_filled_list_to_code_its_callable_runs() -> None:
    # pop_left fills a preallocated list; a callable that is not deque.popleft runs Python code
    # between the fills, and the garbage collector's view of live objects must not hand it a list
    # with empty slots (reading one crashed the interpreter).
    script = textwrap.dedent(
        """
        import gc
        from contexta.capture._metric_columns import pop_left

        marker = object()
        seen = []

        def popper():
            for candidate in gc.get_objects():
                if type(candidate) is list and len(candidate) == 5 and candidate[:1] == [marker]:
                    seen.append(list(candidate))
            return marker

        taken = pop_left(popper, 5)
        print(len(taken), all(item is marker for item in taken), len(seen))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["5", "True"]


# -- a batch built from the writer's facts, encoded in pieces --------------------------------------

_CONTEXTS = [
    ScopeContext("run", "run:p.r", "r", "p", "run:p.r", run_ref="run:p.r"),
    ScopeContext("stage", "stage:p.r.s", "s", "p", "run:p.r", run_ref="run:p.r", stage_ref="stage:p.r.s"),
]
_metric = st.builds(
    lambda context, key, value, unit, step, tags: metric_item(
        0, tuple(_CONTEXTS[context]), key, value, unit, step, "step", tags
    ),
    st.sampled_from(range(len(_CONTEXTS))),
    st.sampled_from(["loss", "acc"]),
    st.one_of(st.floats(), st.integers(-5, 5)),
    st.sampled_from([None, "s"]),
    st.one_of(st.none(), st.integers(0, 1000)),
    st.sampled_from([None, None, None, {"split": "val"}]),
)
_other = st.one_of(
    st.builds(
        lambda context, keys, step: metrics_item(
            0, tuple(_CONTEXTS[context]), tuple((key, float(n)) for n, key in enumerate(keys)), None, step
        ),
        st.sampled_from(range(len(_CONTEXTS))),
        st.lists(st.sampled_from(["a", "b", "c", "loss"]), min_size=1, max_size=4, unique=True),
        st.one_of(st.none(), st.integers(0, 9)),
    ),
    st.builds(
        lambda context: event_item(0, _CONTEXTS[context], "epoch", "done", "info", None),
        st.sampled_from([0, 1]),
    ),
    st.builds(
        lambda context: scope_item(0, _CONTEXTS[context], "open", 0, None, {}), st.sampled_from([0, 1])
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    metrics=st.lists(_metric, min_size=8, max_size=80),
    others=st.lists(st.tuples(st.integers(0, 80), _other), max_size=10),
    piece=st.integers(1, 9),
)
def test_a_batch_built_from_the_writers_facts_and_encoded_in_pieces_matches_item_by_item(
    metrics: list[tuple[Any, ...]], others: list[tuple[int, tuple[Any, ...]]], piece: int
) -> None:
    # The writer builds a batch from what its one pass found (the taken list itself for single
    # metrics, runs copied whole between the few other items otherwise), and the capture log's lane
    # encodes it in pieces: the lines, their record numbers included, are those of the batch built
    # item by item and encoded whole.
    from contexta.capture._log import _metric_lines
    from contexta.capture._log._builder import EntryBuilder
    from contexta.capture._log._metric_lines import record_lines, record_segments

    queued = list(metrics)
    for position, item in sorted(others, key=lambda pair: pair[0], reverse=True):
        queued.insert(min(position, len(queued)), item)
    facts = queued_facts(queued)
    builder = EntryBuilder()
    builder.begin()
    by_facts: list[Any] = []
    if facts.only_metrics:
        by_facts = queued
    else:
        builder.build(list(queued), by_facts, all_metrics=False, others=facts.others)
    one_by_one: list[Any] = []
    builder.build(queued, one_by_one, all_metrics=False, others=None)
    numbering = builder.finish(one_by_one)
    assert by_facts == one_by_one
    assert len(by_facts) == facts.records
    whole = record_lines(one_by_one, numbering, "local-jsonl")
    original = _metric_lines._PIECE
    _metric_lines._PIECE = piece
    try:
        pieces = record_segments(by_facts, numbering, "local-jsonl", lambda: None)
    finally:
        _metric_lines._PIECE = original
    from contexta.capture._log._line_writer import assemble

    assert assemble(pieces) == whole


# -- end to end: the log-writer process, pieces, the few-others path --------------------------------


def test_single_metrics_with_a_few_other_items_reach_the_log_process_and_memory_alike(tmp_path: Any) -> None:
    # Full batches of single metrics with, now and then, a tagged metric, a NaN, an event or a
    # metrics() call (a few other items: the writer copies the runs between them), written through
    # the log-writer process in pieces: every line equals the generic encoding of what the memory
    # sink got, record refs are unique, and the counters add up.
    import math

    from log_checks import assert_log_matches_generic_encoding
    from tests.capture.test_log_process import _SlowFirstWrite

    from contexta import Contexta
    from contexta.capture import LocalJsonlSink

    memory, log = _SlowFirstWrite(), LocalJsonlSink(tmp_path / "capture")
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}, sinks=[memory, log])
    steps = 40_000
    with ctx.run("r") as run, run.stage("s") as stage:
        for step in range(steps):
            value = math.nan if step % 4093 == 7 else step / 7
            if step % 1499 == 3:
                stage.metric("loss", value, step=step, tags={"split": "val"})
            else:
                stage.metric("loss" if step % 2 else "acc", value, step=step, unit="u" if step % 3 else None)
            if step % 2999 == 5:
                stage.event("checkpoint", message=f"step {step}")
            if step % 4999 == 11:
                stage.metrics({"a": 1.0, "b": 2}, step=step)
        ctx.flush()
        used = log.log_process_pid
    stats = ctx.close().stats  # (a flush's report may miss the environment, queued by its own thread)
    assert used is not None, "full batches should have started the log-writer process"
    assert stats.queued == stats.written + stats.failed
    assert stats.failed == 0 and stats.dropped == 0
    lines = assert_log_matches_generic_encoding(memory, log)
    refs = [line["payload_ref"] for line in lines]
    assert len(set(refs)) == len(refs)
    singles = [line for line in lines if line["payload"]["payload"]["metric_key"] in ("loss", "acc")]
    assert [line["payload"]["payload"]["step"] for line in singles] == list(range(steps))


# -- the head of a metadata file ---------------------------------------------------------------------

_FIELD = st.sampled_from(["Metadata-Version", "Summary", "License", "Author", "Description", "Keywords"])
_TEXT = st.text(alphabet="abc xyz.-", min_size=1, max_size=12).map(str.strip).filter(bool)
# A multi-line value as setuptools writes it (rfc822_escape): each further line indented by eight
# spaces, so an empty line of a license text becomes a line of spaces only, which continues the header.
_FOLDED = st.lists(st.one_of(_TEXT, st.just("")), max_size=3).map(
    lambda lines: "".join(f"\n        {line}" for line in lines)
)


@settings(max_examples=300, deadline=None)
@given(
    before=st.lists(st.tuples(_FIELD, _TEXT, _FOLDED), max_size=4),
    name=_TEXT,
    version=_TEXT,
    between=st.lists(st.tuples(_FIELD, _TEXT, _FOLDED), max_size=3),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_a_metadata_head_gives_the_name_and_version_the_email_parser_gives(
    before: list[tuple[str, str, str]],
    name: str,
    version: str,
    between: list[tuple[str, str, str]],
    newline: str,
) -> None:
    # A package whose Name or Version follows a folded multi-line header is listed with them, as
    # importlib.metadata's parser lists it, not left out of the environment snapshot.
    import email

    from contexta.capture import _environment

    lines = [f"{field}: {value}{folded}" for field, value, folded in before]
    lines.append(f"Name: {name}")
    lines += [f"{field}: {value}{folded}" for field, value, folded in between]
    lines.append(f"Version: {version}")
    text = ("\n".join(lines) + "\n\nName: in-the-body\nVersion: 0\n").replace("\n", newline)
    message = email.message_from_string(text)
    assert _environment._headers(text) == (message["Name"], message["Version"]) == (name, version)
