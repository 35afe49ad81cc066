"""`contexta import tensorboard`: scalars written by tensorboardX come into a workspace, one run per
event directory, every point at its step and wall time; importing again changes nothing; torn and
damaged event files are handled as TensorBoard handles them."""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from contexta import Workspace
from contexta._imports import import_tensorboard
from contexta._imports._tfrecord import crc32c
from contexta.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner

tensorboardx = pytest.importorskip("tensorboardX")
from tensorboardX.proto import event_pb2, summary_pb2, tensor_pb2  # noqa: E402

WALL0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _iso(seconds: float) -> str:
    micros = round(seconds * 1_000_000)
    stamp = datetime.fromtimestamp(micros // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{micros % 1_000_000:06d}Z"


def _write_logs(logdir: Path) -> None:
    """Two runs (two subdirectories), several tags, steps out of lockstep, a histogram (not a
    scalar) between them, and one TF2-style scalar: a tensor whose metadata names the scalars plugin."""
    rng = np.random.default_rng(0)
    for run, scale in (("resnet", 1.0), ("vit/lr-3e-4", 2.5)):
        with tensorboardx.SummaryWriter(str(logdir / run)) as writer:
            for step in range(0, 50, 5):
                wall = WALL0 + step * 0.25 + 0.000125
                writer.add_scalar("loss/train", scale / (step + 1) + 0.1 / 3, step, walltime=wall)
                writer.add_scalar("accuracy", 1 - 1 / (step + 2), step, walltime=wall + 0.5)
                writer.add_histogram("weights", rng.normal(size=64), step, walltime=wall)
            writer.add_scalar("lr", 3e-4 * scale, 1, walltime=WALL0 + 99)
            metadata = summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
            )
            for step, value in enumerate([0.75, 0.5]):
                tensor = tensor_pb2.TensorProto(dtype=1, float_val=[value * scale])
                summary = summary_pb2.Summary(
                    value=[
                        summary_pb2.Summary.Value(
                            tag="tf2/score", tensor=tensor, metadata=metadata if step == 0 else None
                        )
                    ]
                )
                writer._get_file_writer().add_summary(summary, step, walltime=WALL0 + 200 + step)


def _reference_scalars(directory: Path) -> dict[str, list[tuple[int, float, str]]]:
    """What the event files hold, decoded by tensorboardX's generated protobuf classes (not by the
    code under test): tag -> [(step, value as float32, wall time)]."""
    found: dict[str, list[tuple[int, float, str]]] = defaultdict(list)
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 16 + length
            for value in event.summary.value:
                if value.HasField("tensor"):
                    number = value.tensor.float_val[0]
                elif value.WhichOneof("value") == "simple_value":
                    number = value.simple_value
                else:
                    continue
                found[value.tag].append((event.step, float(np.float32(number)), _iso(event.wall_time)))
    return dict(found)


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    root = tmp_path / "tb-logs"
    _write_logs(root)
    return root


def _dump(workspace: Path) -> tuple[str, dict[str, bytes]]:
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        rows = "\n".join(connection.iterdump())
    logs = {path.name: path.read_bytes() for path in sorted((workspace / "cache" / "capture").glob("*"))}
    return rows, logs


def test_each_event_directory_imports_as_a_run_with_every_scalar(
    tmp_path: Path, cli: CliRunner, logdir: Path
) -> None:
    workspace = tmp_path / "ws"

    result = cli("import", "tensorboard", logdir, "--workspace", workspace)

    assert result.code == 0, result.err
    assert "Imported 2 run(s)" in result.out
    reader = Workspace(workspace)
    runs = {run.name: run for run in reader.list_runs()}
    assert set(runs) == {"resnet", "vit/lr-3e-4"}
    for name, run in runs.items():
        assert run.project_name == "tb-logs" and run.status == "completed"
        expected = _reference_scalars(logdir / name)
        assert set(expected) == {"loss/train", "accuracy", "lr", "tf2/score"}
        for tag, points in expected.items():
            series = reader.get_metric_series(run.run_id, tag)
            got = [(point.step, point.value, point.observed_at) for point in series.points]
            assert got == points  # values are the float32 TensorBoard stores, exactly
        assert run.started_at == min(at for points in expected.values() for _, _, at in points)
        assert run.ended_at == max(at for points in expected.values() for _, _, at in points)


def test_importing_a_log_directory_twice_leaves_the_same_store(
    tmp_path: Path, cli: CliRunner, logdir: Path
) -> None:
    workspace = tmp_path / "ws"
    assert cli("import", "tensorboard", logdir, "--workspace", workspace).code == 0
    before = _dump(workspace)

    again = cli("import", "tensorboard", logdir, "--workspace", workspace)

    assert again.code == 0, again.err
    assert "Imported 0 run(s)" in again.out and "2 run(s) were imported already" in again.out
    assert _dump(workspace) == before


def test_project_chooses_the_project_the_runs_go_to(tmp_path: Path, cli: CliRunner, logdir: Path) -> None:
    workspace = tmp_path / "ws"

    result = cli("import", "tensorboard", logdir, "--workspace", workspace, "--project", "Vision Team")

    assert result.code == 0, result.err
    runs = Workspace(workspace).list_runs()
    assert {run.project_name for run in runs} == {"vision-team"}
    assert {run.run_id for run in runs} >= {"run:vision-team.resnet"}


def test_a_torn_last_record_is_skipped_and_counted(tmp_path: Path, cli: CliRunner, logdir: Path) -> None:
    event_file = next((logdir / "resnet").glob("events.out.tfevents.*"))
    whole = _reference_scalars(logdir / "resnet")
    event_file.write_bytes(event_file.read_bytes()[:-7])  # the writer died inside its last record
    workspace = tmp_path / "ws"

    result = cli("import", "tensorboard", logdir, "--workspace", workspace)

    assert result.code == 0, result.err
    assert "torn last record in 1 event file" in result.out
    reader = Workspace(workspace)
    run = next(run for run in reader.list_runs() if run.name == "resnet")
    assert len(reader.get_metric_series(run.run_id, "tf2/score").points) == len(whole["tf2/score"]) - 1
    assert len(reader.get_metric_series(run.run_id, "loss/train").points) == len(whole["loss/train"])
    report = import_tensorboard(logdir, workspace=tmp_path / "ws2")
    assert report.torn_records == 1


def test_a_damaged_record_fails_the_import_clearly(tmp_path: Path, cli: CliRunner, logdir: Path) -> None:
    event_file = next((logdir / "vit" / "lr-3e-4").glob("events.out.tfevents.*"))
    data = bytearray(event_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    event_file.write_bytes(bytes(data))

    result = cli("import", "tensorboard", logdir, "--workspace", tmp_path / "ws")

    assert result.code == 1
    assert "is not a readable event file" in result.err and str(event_file) in result.err
    with pytest.raises(ValidationError) as damaged:
        import_tensorboard(logdir, workspace=tmp_path / "ws")
    assert damaged.value.code == "import_source_corrupt"


def test_a_missing_or_empty_log_directory_is_not_found(tmp_path: Path, cli: CliRunner) -> None:
    missing = cli("import", "tensorboard", tmp_path / "nope", "--workspace", tmp_path / "ws")
    assert missing.code == 1 and "no TensorBoard log directory" in missing.err
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError) as empty:
        import_tensorboard(tmp_path / "empty", workspace=tmp_path / "ws")
    assert empty.value.code == "import_source_not_found"


def test_the_progress_bar_goes_to_stderr_only_when_asked_off_a_terminal(
    tmp_path: Path, cli: CliRunner, logdir: Path
) -> None:
    quiet = cli("import", "tensorboard", logdir, "--workspace", tmp_path / "ws")
    shown = cli("import", "tensorboard", logdir, "--workspace", tmp_path / "ws2", "--progress")

    assert quiet.err == ""
    assert "importing [" in shown.err and "100%" in shown.err and "bytes" in shown.err
    assert "importing [" not in shown.out


def test_crc32c_matches_the_published_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # RFC 3720's CRC-32C check value


def test_importing_contexta_leaves_tensorboardx_unloaded() -> None:
    program = (
        "import sys, contexta; "
        "print(sorted(m for m in ('contexta._imports', 'tensorboardX') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
