"""Values a capture call accepts are always written: text cut inside an emoji, ints beyond 64 bits,
enum keys, file names that are not UTF-8. Each is stored in its documented form or refused at the
call with a coded `ValidationError`; none costs another record anything (docs/reliability.md,
"Hostile input").

The documented forms, written out here independently of the code under test (`expected`):
unpaired surrogates become U+FFFD (a pair becomes its character), an int beyond the signed 64-bit
range becomes the string of its digits, an enum member (or other str/int subclass) its plain value,
a tuple a list; keys that are not text, and nesting deeper than 32, are refused.
"""

from __future__ import annotations

import enum
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from contexta import Contexta
from contexta.capture import LocalJsonlSink, read_capture_log
from contexta.errors import ValidationError

CUT_ANSWER = json.loads('"The capital of France is Paris \\ud83d"')  # an LLM answer cut mid-emoji
REPLACEMENT = "\ufffd"


class Split(enum.StrEnum):
    TRAIN = "train"
    TEST = "test"


class Optimizer(str, enum.Enum):  # noqa: UP042 (the older way: its str() is "Optimizer.ADAM", its value "adam")
    ADAM = "adam"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def _open(workspace: Path) -> Contexta:
    return Contexta(workspace=workspace, config={"project_name": "p", "capture": {"redact_secrets": False}})


def _log_lines(ctx: Contexta, family: str) -> list[dict[str, Any]]:
    log = next(sink for sink in ctx.sinks if isinstance(sink, LocalJsonlSink))
    read = read_capture_log(log.file_path_for(family))
    assert not read.skipped_lines
    return read.lines


def test_one_answer_cut_mid_emoji_among_3000_samples_costs_nothing(tmp_path: Path) -> None:
    ctx = _open(tmp_path / ".contexta")
    with ctx.run("eval") as run, run.stage("judge") as stage:
        for number in range(3_000):
            answer = CUT_ANSWER if number == 1_234 else f"answer {number} \U0001f600"
            with stage.sample(f"case-{number}") as sample:
                sample.event("llm.answer", message=answer, attributes={"answer": answer, "case": number})
                sample.metric("correct", float(number % 2))
    report = ctx.flush()
    assert report.ok and report.errors == (), report.errors
    stats = ctx.capture_stats()
    assert stats.failed == 0 and stats.queued == stats.written, stats

    assert len(ctx.list_samples("eval")) == 3_000
    assert len(ctx.get_metric_series("eval", "correct").points) == 3_000
    stored = {
        event.payload.attributes["case"]: event.payload
        for event in ctx.record_store.scan(run="run:p.eval", record_type="event")
    }
    logged = {
        line["payload"]["payload"]["attributes"]["case"]: line["payload"]["payload"]
        for line in _log_lines(ctx, "RECORD")
        if line["payload_type"] == "StructuredEventRecord"
    }
    assert sorted(stored) == sorted(logged) == list(range(3_000))
    kept = "The capital of France is Paris " + REPLACEMENT  # the lone half of the emoji, replaced
    assert stored[1_234].message == stored[1_234].attributes["answer"] == kept
    assert logged[1_234]["message"] == logged[1_234]["attributes"]["answer"] == kept
    assert stored[7].message == logged[7]["message"] == "answer 7 \U0001f600"
    ctx.close()


def test_a_seed_beyond_64_bits_in_the_config_keeps_the_run_and_every_digit(tmp_path: Path) -> None:
    entropy = np.random.SeedSequence().entropy
    assert isinstance(entropy, int) and entropy >= 2**64  # 128 bits, almost surely
    ctx = _open(tmp_path / ".contexta")
    config = {"seed": entropy, "lr": 0.1, "sizes": [2**70, -(2**63), 2**63 - 1]}
    with ctx.run("train", config_snapshot=config, tags={"seed": entropy}) as run:
        run.event("seeded", message="seeded", attributes={"entropy": entropy})
        run.metric("loss", 0.5)
    stats = ctx.capture_stats()
    assert stats.failed == 0 and stats.queued == stats.written, stats

    (stored,) = ctx.list_runs()
    expected = {"seed": str(entropy), "lr": 0.1, "sizes": [str(2**70), -(2**63), 2**63 - 1]}
    assert stored.config_snapshot == expected
    assert stored.tags == {"seed": str(entropy)}
    assert int(stored.config_snapshot["seed"]) == entropy  # every digit kept
    (event,) = ctx.record_store.scan(run="run:p.train", record_type="event")
    assert event.payload.attributes == {"entropy": str(entropy)}
    (opened, *_) = [line for line in _log_lines(ctx, "CONTEXT") if line["payload_type"] == "Run"]
    assert opened["payload"]["config_snapshot"] == expected
    assert ctx.get_metric_series("train", "loss").values == (0.5,)
    ctx.close()


def test_enum_keys_and_values_are_stored_as_their_plain_values(tmp_path: Path) -> None:
    ctx = _open(tmp_path / ".contexta")
    config = {
        Split.TRAIN: {"size": 800, "optimizer": Optimizer.ADAM, "level": Level.HIGH},
        "splits": [Split.TRAIN, Split.TEST],
    }
    with ctx.run("enums", config_snapshot=config) as run:
        run.event("split", message=Split.TEST, attributes={Split.TEST: Level.LOW, "opt": Optimizer.ADAM})
        with pytest.raises(ValidationError) as refused:  # a key that is not text at all
            run.event("split", message="m", attributes={Level.LOW: "low"})
        assert refused.value.code == "attributes_invalid"
    stats = ctx.capture_stats()
    assert stats.failed == 0 and stats.queued == stats.written, stats
    expected = {"train": {"size": 800, "optimizer": "adam", "level": 2}, "splits": ["train", "test"]}
    (stored,) = ctx.list_runs()
    assert stored.config_snapshot == expected
    (event,) = ctx.record_store.scan(run="run:p.enums", record_type="event")
    assert (event.payload.message, event.payload.attributes) == ("test", {"test": 1, "opt": "adam"})
    ctx.close()


def test_an_artifact_whose_file_name_is_not_utf8_is_hashed_recorded_and_found_again(tmp_path: Path) -> None:
    raw_name = b"model-\xff.bin"  # a name of bytes, as a tool or another locale wrote it
    directory = tmp_path / "out"
    directory.mkdir()
    try:
        with open(os.path.join(os.fsencode(directory), raw_name), "wb") as handle:
            handle.write(b"weights" * 1000)
    except OSError as error:  # a file system that insists on UTF-8 names
        pytest.skip(f"this file system refuses non-UTF-8 names: {error}")
    path = os.path.join(str(directory), os.fsdecode(raw_name))  # how os.listdir() returns it
    ctx = _open(tmp_path / ".contexta")
    with ctx.run("artifacts") as run:
        result = run.register_artifact("model", path)
        run.metric("loss", 0.1)
    manifest = result.payload["manifest"]
    assert manifest.size_bytes == 7000 and manifest.hash_value is not None
    assert manifest.location_ref == f"file://{directory}/model-%FF.bin"  # every byte kept, as %XX
    stats = ctx.capture_stats()
    assert stats.failed == 0 and stats.queued == stats.written, stats

    (stored,) = ctx.list_artifacts("artifacts")
    assert stored.location == manifest.location_ref and stored.hash_value == manifest.hash_value
    (line,) = _log_lines(ctx, "ARTIFACT")
    assert line["payload"]["manifest"]["location_ref"] == manifest.location_ref
    assert line["payload"]["source"]["uri"] == manifest.location_ref
    verification = ctx.verify_artifact(manifest.artifact_ref)
    assert verification.status == "verified" and verification.path == path
    assert verification.to_dict()["path"] == manifest.location_ref  # what JSON output can carry
    kept = ctx.artifact_store.keep_copy(manifest.artifact_ref)  # found by its location, byte for byte
    assert kept.read_bytes() == b"weights" * 1000
    os.remove(path)
    assert ctx.verify_artifact(manifest.artifact_ref).status == "missing"
    ctx.close()


def test_text_utf8_cannot_hold_is_stored_replaced_everywhere_a_call_takes_free_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", os.fsdecode(b"0,\xff"))  # an odd byte in the environment
    ctx = _open(tmp_path / ".contexta")
    kept = "cut " + REPLACEMENT
    with (
        pytest.raises(RuntimeError),
        ctx.run("texts", code_revision="rev \udcff", dataset_ref="data \ud83d") as run,
        run.stage("s") as stage,
    ):
        stage.metric("latency", 1.0, unit="ms \ud83d")
        stage.metrics({"a": 1.0, "b": 2.0}, unit="ms \ud83d")
        with stage.sample("one", retention_class="keep \ud83d") as sample:
            sample.span("call", attributes={"prompt": "cut \ud83d"})
        raise RuntimeError("the model answered " + CUT_ANSWER)
    report = ctx.flush()
    assert report.errors == (), report.errors  # every value was taken as documented, none salvaged
    stats = ctx.capture_stats()
    assert stats.failed == 0 and stats.queued == stats.written, stats

    (run_record,) = ctx.list_runs()
    assert run_record.status == "failed"
    assert run_record.code_revision == "rev " + REPLACEMENT
    assert run_record.dataset_ref == "data " + REPLACEMENT
    assert run_record.failure is not None
    assert run_record.failure["message"] == "the model answered The capital of France is Paris " + REPLACEMENT
    (sample,) = ctx.list_samples("texts")
    assert sample.retention_class == "keep " + REPLACEMENT
    (span,) = ctx.record_store.scan(run="run:p.texts", record_type="span")
    assert span.payload.attributes == {"prompt": kept}
    units = {
        line["payload"]["payload"].get("unit")
        for line in _log_lines(ctx, "RECORD")
        if line["payload_type"] == "MetricRecord"
    }
    assert units == {"ms " + REPLACEMENT}
    (environment,) = [
        line for line in _log_lines(ctx, "CONTEXT") if line["payload_type"] == "EnvironmentSnapshot"
    ]
    assert (
        environment["payload"]["attributes"]["environment_variables"]["CUDA_VISIBLE_DEVICES"]
        == "0," + REPLACEMENT
    )
    ctx.close()


def test_names_and_paths_that_no_file_or_ref_can_hold_are_refused_at_the_call(tmp_path: Path) -> None:
    ctx = _open(tmp_path / ".contexta")
    with pytest.raises(ValidationError) as refused:
        ctx.run("run \ud83d")
    assert refused.value.code == "name_invalid"
    with ctx.run("ok") as run:
        for name in ("sample \ud83d",):
            with pytest.raises(ValidationError) as refused:
                run.stage(name)
            assert refused.value.code == "name_invalid"
        with pytest.raises(ValidationError) as refused:
            run.span("span \ud83d")
        assert refused.value.code == "metric_key_invalid"
        with pytest.raises(ValidationError) as refused:  # half an emoji: no file can have this name
            run.register_artifact("model", str(tmp_path / "model-\ud83d.bin"), allow_missing=True)
        assert refused.value.code == "artifact_path_invalid" and len(refused.value.message) < 300
        run.metric("loss", 1.0)
    assert ctx.capture_stats().failed == 0
    ctx.close()


# -- generated: odd values mixed with ordinary records ------------------------------------------

SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
MAX_DEPTH = 32  # attributes nested deeper are refused (documented with json_attributes)


class RefusedValueError(Exception):
    """The call must refuse this value."""


def expected(value: Any, depth: int = 0) -> Any:
    """The documented stored form of an attribute value, or RefusedValueError."""
    if depth > MAX_DEPTH:
        raise RefusedValueError
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, list | tuple):
        return [expected(item, depth + 1) for item in value]
    assert isinstance(value, dict)
    result: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise RefusedValueError
        text = expected(key)
        if text in result:
            raise RefusedValueError  # two keys that are one text once surrogates are replaced
        result[text] = expected(item, depth + 1)
    return result


surrogates = st.sampled_from(["\ud83d", "\ude00", "\udcff", "\ud800", "\ud83d\ude00"])
odd_text = st.lists(st.one_of(st.text(max_size=6), surrogates), max_size=5).map("".join)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**200), 2**200),  # beyond 64 bits, mostly
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text,
    st.sampled_from([Split.TRAIN, Optimizer.ADAM, Level.HIGH]),
)
keys = st.one_of(
    odd_text, st.sampled_from([Split.TEST, Optimizer.ADAM]), st.integers(0, 3), st.just(Level.LOW)
)
trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(keys, children, max_size=3)
    ),
    max_leaves=12,
)


def _deep(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": "\ud83d"}
    for _ in range(depth):
        node = {"next": node}
    return node


attribute_maps = st.one_of(
    st.dictionaries(keys, trees, max_size=4),
    st.integers(28, 36).map(lambda depth: {"deep": _deep(depth)}),
)
odd_record = st.tuples(st.sampled_from(["event", "span", "run"]), odd_text, attribute_maps)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contexta]:
    ctx = _open(tmp_path_factory.mktemp("unencodable") / ".contexta")
    yield ctx
    report = ctx.close()
    assert report.ok and ctx.capture_stats().failed == 0, report.errors  # nothing ever broke the writer


_runs = itertools.count()


@SETTINGS
@given(odd=st.lists(odd_record, min_size=1, max_size=4), ordinary=st.integers(1, 30))
def test_generated_odd_values_are_stored_as_documented_or_refused_and_cost_no_ordinary_record(
    shared: Contexta, odd: list[tuple[str, str, dict[str, Any]]], ordinary: int
) -> None:
    ctx = shared
    name = f"gen-{next(_runs)}"
    run_ref = f"run:p.{name}"
    accepted_events: dict[str, tuple[str, dict[str, Any]]] = {}  # event key -> (message, attributes)
    accepted_spans: dict[str, dict[str, Any]] = {}
    run_config: dict[str, Any] | None = None
    refused = 0

    run_kinds = [attributes for kind, _, attributes in odd if kind == "run"]
    config = run_kinds[0] if run_kinds else None
    try:
        run = ctx.run(name, config_snapshot=config)
    except ValidationError as error:
        assert error.code == "attributes_invalid" and len(error.message) < 400
        with pytest.raises(RefusedValueError):
            expected(config)
        run = ctx.run(name)
        refused += 1
    else:
        run_config = None if config is None else expected(config)
    with run:
        for index, (kind, message, attributes) in enumerate(odd):
            for number in range(ordinary):  # ordinary records before and between the odd ones
                run.event("ordinary", message=f"ordinary {index}.{number}", attributes={"n": number})
                run.metric("ordinary.value", float(number), step=index * 100 + number)
            key = f"odd.{index}"
            try:
                if kind == "event":
                    run.event(key, message=message, attributes=attributes)
                elif kind == "span":
                    run.span(key, attributes=attributes)
                else:
                    continue
            except ValidationError as error:
                assert error.code == "attributes_invalid" and len(error.message) < 400
                with pytest.raises(RefusedValueError):
                    expected(attributes)
                refused += 1
                continue
            if kind == "event":
                accepted_events[key] = (expected(message), expected(attributes))
            else:
                accepted_spans[key] = expected(attributes)

    event(f"refused {refused} of {len(odd)} odd records")
    stats = ctx.capture_stats()
    assert stats.failed == 0 and stats.queued == stats.written, stats

    # Every ordinary record, in the store and in the log.
    points = ctx.get_metric_series(run_ref, "ordinary.value").points
    assert len(points) == ordinary * len(odd)
    stored_events = ctx.record_store.scan(run=run_ref, record_type="event")
    ordinary_stored = [event for event in stored_events if event.payload.event_key == "ordinary"]
    assert len(ordinary_stored) == ordinary * len(odd)
    log = [
        line["payload"]
        for line in _log_lines(ctx, "RECORD")
        if line["payload"]["envelope"].get("run_ref") == run_ref
    ]
    assert sum(1 for line in log if line["payload"].get("event_key") == "ordinary") == ordinary * len(odd)
    assert sum(1 for line in log if line["payload"].get("metric_key") == "ordinary.value") == ordinary * len(
        odd
    )

    # Each odd one accepted is stored as documented, in both.
    odd_stored = {
        event.payload.event_key: (event.payload.message, event.payload.attributes or {})
        for event in stored_events
        if event.payload.event_key != "ordinary"
    }
    odd_logged = {
        line["payload"]["event_key"]: (line["payload"]["message"], line["payload"].get("attributes") or {})
        for line in log
        if line["envelope"]["record_type"] == "event" and line["payload"]["event_key"] != "ordinary"
    }
    assert odd_stored == odd_logged == accepted_events
    spans_stored = {
        span.payload.span_name: span.payload.attributes or {}
        for span in ctx.record_store.scan(run=run_ref, record_type="span")
    }
    assert spans_stored == accepted_spans
    (record,) = [stored for stored in ctx.list_runs() if stored.run_id == run_ref]
    assert record.config_snapshot == run_config
