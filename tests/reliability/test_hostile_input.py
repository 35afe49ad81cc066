"""Garbage in: every input is either stored faithfully or refused at the call with a coded error;
none crashes the writer, none writes outside the workspace, no artifact path hangs."""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contexta import Contexta
from contexta.capture import LocalJsonlSink, read_capture_log
from contexta.errors import ContextaError, ValidationError

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
KEY_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
REF_COMPONENT = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")

nasty_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["..", "../../etc/passwd", "a/b\\c", "ünïcødé", "名前", "a.b.c", " ", "\x00", "-", "ok"]),
    st.integers(1, 4).map(lambda repeat: "ab" * 2_500 * repeat),  # 5,000 to 20,000 characters
)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contexta]:
    root = tmp_path_factory.mktemp("hostile")
    context = Contexta(
        workspace=root / ".contexta", config={"project_name": "hostile", "capture": {"redact_secrets": False}}
    )
    yield context
    report = context.close()
    assert report.ok and context.capture_stats().failed == 0  # nothing ever broke the writer
    outside = [path for path in root.rglob("*") if not path.is_relative_to(root / ".contexta")]
    assert outside == [], f"files written outside the workspace: {outside}"


def _coded(error: ContextaError) -> None:
    assert isinstance(error, ValidationError) and re.fullmatch(r"[a-z_]+", error.code)


@SETTINGS
@given(name=nasty_text)
def test_scope_names_become_valid_refs_or_are_refused(ctx: Contexta, name: str) -> None:
    try:
        run = ctx.run(name)
    except ContextaError as error:
        _coded(error)
        return
    with run:
        component = run.ref.removeprefix("run:").partition(".")[2]
        assert REF_COMPONENT.fullmatch(component) and len(run.ref) <= 255
        try:
            stage = run.stage(name)
        except ContextaError as error:
            _coded(error)
            return
        with stage, stage.sample(name) as sample:
            sample.metric("ok", 1.0)
            assert sample.ref.partition(":")[2].startswith(stage.ref.partition(":")[2] + ".")


@SETTINGS
@given(key=nasty_text)
def test_metric_keys_are_accepted_exactly_when_they_are_valid(ctx: Contexta, key: str) -> None:
    with ctx.run("keys") as run:
        valid = KEY_PATTERN.fullmatch(key) is not None and len(key) <= 200
        if valid:
            run.metric(key, 1.0)
        else:
            with pytest.raises(ValidationError) as refused:
                run.metric(key, 1.0)
            assert refused.value.code == "metric_key_invalid"


values = st.one_of(
    st.floats(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
    st.sampled_from(
        [np.float32(0.5), np.int64(7), np.float64("nan"), np.bool_(True), np.array([1.0]), object()]
    ),
)


@SETTINGS
@given(value=values)
def test_metric_values_are_stored_as_given_or_refused(ctx: Contexta, value: Any) -> None:
    is_number = (isinstance(value, float | int | np.floating | np.integer)) and not isinstance(
        value, bool | np.bool_
    )
    # NaN and infinities are numbers too: recorded, and read back as the same float.
    storable = is_number and (not isinstance(value, int) or -(2**63) <= value < 2**63)
    with ctx.run("values") as run:
        if storable:
            run.metric("v", value)
        else:
            with pytest.raises(ValidationError) as refused:
                run.metric("v", value)
            assert refused.value.code == "metric_value_invalid"
            assert len(refused.value.message) < 300  # never the whole value
    if storable:
        (stored,) = ctx.get_metric_series("values", "v").values
        assert type(stored) in (int, float)
        assert math.isnan(stored) if math.isnan(value) else stored == value


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_tree = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
bad_leaf = st.sampled_from([math.nan, math.inf, object(), b"bytes", {1, 2}, 3 + 4j])


@SETTINGS
@given(
    attributes=st.dictionaries(st.text(max_size=10), json_tree, max_size=5),
    poison=st.one_of(st.none(), bad_leaf),
)
def test_event_attributes_round_trip_or_are_refused(
    ctx: Contexta, attributes: dict[str, Any], poison: Any
) -> None:
    given_attributes = dict(attributes)
    if poison is not None:
        given_attributes["poison"] = {"deep": [poison]}
    with ctx.run("attributes") as run:
        if poison is not None:
            with pytest.raises(ValidationError) as refused:
                run.event("e", message="m", attributes=given_attributes)
            assert refused.value.code == "attributes_invalid"
            return
        run.event("e", message="m", attributes=given_attributes)
    sink = next(sink for sink in ctx.sinks if isinstance(sink, LocalJsonlSink))
    last = [
        line
        for line in read_capture_log(sink.file_path_for("RECORD")).lines
        if line["payload_type"] == "StructuredEventRecord"
    ][-1]
    assert last["payload"]["payload"].get("attributes", {}) == orjson.loads(orjson.dumps(given_attributes))


def test_cyclic_and_too_deep_attributes_are_refused(ctx: Contexta) -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(200):
        node["next"] = {}
        node = node["next"]
    with ctx.run("structures") as run:
        for value in (cyclic, deep):
            with pytest.raises(ValidationError) as refused:
                run.event("e", message="m", attributes=value)
            assert refused.value.code == "attributes_invalid"
        run.event("e", message="m", attributes={"fine": [1, 2, {"x": None}]})


@pytest.mark.parametrize("kind", ["device", "dangling_symlink", "directory", "fifo"])
def test_artifact_paths_that_are_not_files_get_a_clear_error_without_hanging(
    ctx: Contexta, tmp_path: Path, kind: str
) -> None:
    target = tmp_path / kind
    if kind == "device":
        target = Path("/dev/zero")
    elif kind == "dangling_symlink":
        target.symlink_to(tmp_path / "gone")
    elif kind == "directory":
        target.mkdir()
    else:
        os.mkfifo(target)
    with ctx.run("artifacts") as run:
        started = time.monotonic()
        with pytest.raises(ValidationError) as refused:
            run.register_artifact("thing", str(target))
        assert time.monotonic() - started < 5
        assert refused.value.code in ("artifact_not_regular_file", "artifact_missing")
        if kind == "dangling_symlink":
            pending = run.register_artifact("thing", str(target), allow_missing=True)
            assert pending.payload["binding_status"] == "PENDING"


def test_a_file_growing_while_it_is_hashed_is_refused_or_hashed_as_it_was(
    ctx: Contexta, tmp_path: Path
) -> None:
    path = tmp_path / "growing.bin"
    path.write_bytes(os.urandom(1 << 20))
    stop = threading.Event()

    def grow() -> None:
        with path.open("ab") as handle:
            while not stop.is_set():
                handle.write(os.urandom(1 << 16))
                handle.flush()

    writer = threading.Thread(target=grow)
    writer.start()
    try:
        with ctx.run("growing") as run:
            started = time.monotonic()
            try:
                result = run.register_artifact("log", str(path))
            except ValidationError as error:
                assert error.code == "artifact_changed_while_hashing"
            else:  # hashed in a moment without growth: the digest is of a real prefix
                assert result.payload["manifest"].size_bytes >= 1 << 20
            assert time.monotonic() - started < 30
    finally:
        stop.set()
        writer.join()
