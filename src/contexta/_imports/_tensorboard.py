"""Reading TensorBoard scalars from event files, without TensorFlow, TensorBoard or protobuf.

An event file (`events.out.tfevents.*`) is a TFRecord file (`_tfrecord.py`) of `Event` messages. Only
a few fields matter for scalars, so they are decoded here from the protobuf wire format directly
rather than through tensorboard's or tensorboardX's generated classes: importing needs neither
package (nor a protobuf runtime of the version they were generated for), and skipping every other
field (graphs, histograms, images) without building messages for them is faster. The fields:

    Event:            1 wall_time (double), 2 step (int64), 5 summary (Summary)
    Summary:          1 value (repeated Summary.Value)
    Summary.Value:    1 tag, 2 simple_value (float), 8 tensor (TensorProto), 9 metadata (SummaryMetadata)
    SummaryMetadata:  1 plugin_data (PluginData: 1 plugin_name), 4 data_class (1 = scalar)
    TensorProto:      1 dtype, 4 tensor_content, 5 float_val, 6 double_val, 7 int_val, 10 int64_val

A scalar is a value with `simple_value` (TF1, tensorboardX, PyTorch's SummaryWriter), or a one-element
tensor of a tag whose metadata (usually on its first value only) names the `scalars` plugin or the
scalar data class (TF2's `tf.summary.scalar`). `simple_value` is a float32: the stored value is that
float32 as a Python float, exactly what TensorBoard shows.

One run per directory holding event files (several files in one directory, written by restarts,
are read in name order, which is time order); its name is the directory's path under the log
directory.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contexta._imports._model import ImportedRun
from contexta._imports._tfrecord import RecordReadResult, read_records
from contexta.errors import NotFoundError, ValidationError

__all__ = ["TensorboardSource", "event_directories", "scalar_events"]

_EVENT_GLOB = "events.out.tfevents.*"
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")
_SCALAR_DATA_CLASS = 1
_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64 = 1, 2, 3, 9


class _MalformedError(Exception):
    """The bytes are not the protobuf message expected."""


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if offset >= len(data):
            raise _MalformedError("a varint runs past its message")
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, offset
        shift += 7
        if shift > 63:
            raise _MalformedError("a varint is longer than 10 bytes")


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field of a message: ints for varints, bytes for the
    others (8 bytes for fixed64, 4 for fixed32, the payload for length-delimited)."""
    offset, end = 0, len(data)
    while offset < end:
        key, offset = _varint(data, offset)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, offset = _varint(data, offset)
        elif wire == 1:
            value, offset = data[offset : offset + 8], offset + 8
        elif wire == 2:
            length, offset = _varint(data, offset)
            value, offset = data[offset : offset + length], offset + length
        elif wire == 5:
            value, offset = data[offset : offset + 4], offset + 4
        else:
            raise _MalformedError(f"wire type {wire} (groups are not used by event files)")
        if offset > end:
            raise _MalformedError("a field runs past its message")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _is_scalar_metadata(data: bytes) -> bool:
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2:
            for inner, inner_wire, name in _fields(value):
                if inner == 1 and inner_wire == 2 and name == b"scalars":
                    return True
        elif number == 4 and wire == 0 and value == _SCALAR_DATA_CLASS:
            return True
    return False


def _tensor_scalar(data: bytes) -> float | None:
    """The single number of a one-element tensor, or None for any other tensor."""
    dtype, values, content = 0, [], b""
    for number, wire, value in _fields(data):
        if number == 1 and wire == 0:
            dtype = value
        elif number == 4 and wire == 2:
            content = value
        elif number == 5:  # float_val: packed (wire 2) or one (wire 5)
            values += [v for (v,) in _FLOAT.iter_unpack(value)]
        elif number == 6:
            values += [v for (v,) in _DOUBLE.iter_unpack(value)]
        elif number in (7, 10):
            if wire == 0:
                values.append(float(_signed64(value)))
            else:
                offset = 0
                while offset < len(value):
                    item, offset = _varint(value, offset)
                    values.append(float(_signed64(item)))
    if content:
        layout = {_DT_FLOAT: "<f", _DT_DOUBLE: "<d", _DT_INT32: "<i", _DT_INT64: "<q"}.get(dtype)
        if layout is None or len(content) != struct.calcsize(layout):
            return None
        return float(struct.unpack(layout, content)[0])
    return float(values[0]) if len(values) == 1 else None


def scalar_events(data: bytes, scalar_tags: set[str]) -> Iterator[tuple[float, int, str, float]]:
    """(wall time, step, tag, value) of each scalar in one Event message. `scalar_tags` carries the
    tags whose metadata said "scalar" from one event to the next (TF2 writes it on the first only)."""
    wall_time, step, summary = 0.0, 0, None
    for number, wire, value in _fields(data):
        if number == 1 and wire == 1:
            (wall_time,) = _DOUBLE.unpack(value)
        elif number == 2 and wire == 0:
            step = _signed64(value)
        elif number == 5 and wire == 2:
            summary = value
    if summary is None:
        return
    for number, wire, value in _fields(summary):
        if number != 1 or wire != 2:
            continue
        tag, simple, tensor, metadata = "", None, None, None
        for inner, inner_wire, field in _fields(value):
            if inner == 1 and inner_wire == 2:
                tag = field.decode("utf-8", "replace")
            elif inner == 2 and inner_wire == 5:
                (simple,) = _FLOAT.unpack(field)
            elif inner == 8 and inner_wire == 2:
                tensor = field
            elif inner == 9 and inner_wire == 2:
                metadata = field
        if metadata is not None and _is_scalar_metadata(metadata):
            scalar_tags.add(tag)
        if simple is not None:
            yield wall_time, step, tag, float(simple)
        elif tensor is not None and tag in scalar_tags:
            number_value = _tensor_scalar(tensor)
            if number_value is not None:
                yield wall_time, step, tag, number_value


def event_directories(logdir: Path) -> list[Path]:
    """The directories under `logdir` (itself included) holding event files, in path order."""
    return sorted({path.parent for path in logdir.rglob(_EVENT_GLOB) if path.is_file()})


class TensorboardSource:
    """A TensorBoard log directory to import from: one run per event directory."""

    def __init__(self, logdir: Path, project: str | None):
        from contexta._imports._writer import check_project, derived_project

        if not logdir.is_dir():
            raise NotFoundError(
                f"no TensorBoard log directory at {logdir}",
                code="import_source_not_found",
                details={"path": str(logdir)},
            )
        self.logdir = logdir
        self.directories = event_directories(logdir)
        if not self.directories:
            raise NotFoundError(
                f"{logdir} holds no event files ({_EVENT_GLOB}): is it the directory TensorBoard reads?",
                code="import_source_not_found",
                details={"path": str(logdir)},
            )
        self.project = (
            check_project(project) if project is not None else derived_project(logdir.resolve().name)
        )
        self.torn_records = 0
        self.description = str(logdir)
        self.run_bytes: dict[str, int] = {}  # source id -> bytes of its event files (for progress)

    def count(self) -> tuple[int, int]:
        """(runs, bytes of event files): the progress of a TensorBoard import is counted in bytes."""
        size = sum(path.stat().st_size for directory in self.directories for path in _event_files(directory))
        return len(self.directories), size

    def runs(self) -> Iterator[ImportedRun]:
        for directory in self.directories:
            yield self._run(directory)

    def _run(self, directory: Path) -> ImportedRun:
        relative = directory.relative_to(self.logdir).as_posix()
        name = relative if relative != "." else self.logdir.resolve().name
        files = _event_files(directory)
        run = ImportedRun(
            source="tensorboard",
            # The first event file's name (`events.out.tfevents.<time>.<host>.<pid>.<n>`) tells apart
            # two runs of one path in different log directories (every Lightning project's
            # `lightning_logs/version_0`); a restart adds files after it, so the run keeps its id.
            source_id=f"{self.project}/{relative}/{files[0].name}",
            project=self.project,
            ref_name=name,
            display_name=name,
            status="completed",
            started_ns=0,
            ended_ns=0,
            metadata={"tensorboard": {"run": relative, "files": [path.name for path in files]}},
        )
        self.run_bytes[run.source_id] = sum(path.stat().st_size for path in files)
        first = last = None
        for path in files:
            result = RecordReadResult()
            scalar_tags: set[str] = set()
            try:
                for record in read_records(path, result):
                    for wall_time, step, tag, value in scalar_events(record, scalar_tags):
                        time_ns = round(wall_time * 1_000_000) * 1000  # microseconds: the store's precision
                        run.history(tag).append(time_ns, step, value)
                        first = time_ns if first is None else min(first, time_ns)
                        last = time_ns if last is None else max(last, time_ns)
            except _MalformedError as error:
                raise ValidationError(
                    f"{path} is not a readable event file: a record is not an Event message ({error})",
                    code="import_source_corrupt",
                    details={"path": str(path)},
                ) from None
            self.torn_records += int(result.torn_last_record)
        if first is None:
            first = last = min(int(path.stat().st_mtime_ns) for path in files)
        run.started_ns, run.ended_ns = first, last if last is not None else first
        return run


def _event_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.glob(_EVENT_GLOB) if path.is_file())
