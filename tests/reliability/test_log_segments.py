"""The capture log in segments: the active file is sealed past its limits and compressed, and every
reader (read_capture_log, repair, replay, `contexta tail --follow`) sees each line exactly once, in
order, across the segments, compressed or not."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from contexta import Contexta
from contexta.capture import LocalJsonlSink, compress_sealed_segments, log_segments, read_capture_log
from contexta.capture._log._line_writer import FollowedLog, SegmentLimits

# Small segments, and batches small enough that many of them fill one (a segment is sealed after
# the append that takes it past its limit, so a batch is never split).
SMALL_SEGMENTS = {"segment_bytes": 64 * 1024, "max_batch_size": 64}


def _capture_dir(workspace: Path) -> Path:
    return workspace / "cache" / "capture"


def _losses(workspace: Path) -> list[float]:
    return [
        line["payload"]["payload"]["value"]
        for line in read_capture_log(_capture_dir(workspace) / "record.jsonl").lines
        if line["payload_type"] == "MetricRecord" and line["payload"]["payload"]["metric_key"] == "loss"
    ]


def _train(ctx: Contexta, name: str, steps: int) -> list[float]:
    """A small real fit: gradient descent on y = 3x + 1, recording the loss at every step."""
    xs = [i / 50 for i in range(50)]
    ys = [3 * x + 1 for x in xs]
    w = b = 0.0
    losses = []
    with ctx.run(name) as run, run.stage("train") as stage:
        for step in range(steps):
            errors = [w * x + b - y for x, y in zip(xs, ys, strict=True)]
            loss = sum(e * e for e in errors) / len(errors)
            w -= 0.1 * 2 * sum(e * x for e, x in zip(errors, xs, strict=True)) / len(xs)
            b -= 0.1 * 2 * sum(errors) / len(xs)
            stage.metric("loss", loss, step=step)
            losses.append(loss)
    return losses


def test_a_run_sealed_into_many_compressed_segments_reads_back_whole_and_in_order(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with Contexta(workspace=workspace, config={"project_name": "p", "capture": SMALL_SEGMENTS}) as ctx:
        losses = _train(ctx, "fit", 3_000)
        stored = [point.value for point in ctx.get_metric_series("fit", "loss").points]

    segments = log_segments(_capture_dir(workspace), "RECORD")
    sealed = [segment for segment in segments if not segment.active]
    assert len(sealed) >= 10
    assert all(segment.compressed for segment in sealed)  # close() waits for the compressor
    assert _losses(workspace) == losses
    assert stored == losses
    plain = sum(len(line) for line in (_capture_dir(workspace) / "record.jsonl").open("rb"))
    assert plain <= 64 * 1024 + 64 * 1024  # the active segment stays within its limit (plus one batch)


def test_the_log_is_sealed_once_its_first_line_is_older_than_the_age_limit(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    config = {"project_name": "p", "capture": {"segment_age_s": 2.0, "segment_bytes": 0}}
    with Contexta(workspace=workspace, config=config) as ctx, ctx.run("slow") as run:
        run.metric("loss", 1.0)
        ctx.flush()
        assert not [s for s in log_segments(_capture_dir(workspace), "RECORD") if not s.active]
        time.sleep(2.2)  # past the 2 s limit, counted from the first line's own time
        run.metric("loss", 0.5)
        ctx.flush()
        sealed = [s for s in log_segments(_capture_dir(workspace), "RECORD") if not s.active]
    assert len(sealed) == 1
    assert _losses(workspace) == [1.0, 0.5]


_RANK = textwrap.dedent(
    """
    import sys
    from contexta import Contexta

    workspace, rank = sys.argv[1], int(sys.argv[2])
    config = {"project_name": "ddp", "capture": {"segment_bytes": 256 * 1024, "max_batch_size": 256}}
    with Contexta(workspace=workspace, config=config) as ctx, ctx.run(f"rank-{rank}") as run:
        with run.stage("train") as stage:
            for step in range(40_000):
                stage.metric("loss", rank + step / 40_000, step=step)
    """
)


def test_processes_sharing_a_log_that_is_sealed_under_them_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    Contexta(workspace=workspace, config={"project_name": "ddp"}).close()
    ranks = [
        subprocess.Popen([sys.executable, "-c", _RANK, str(workspace), str(rank)], stderr=subprocess.PIPE)
        for rank in range(4)
    ]
    for process in ranks:
        _, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors.decode()

    read = read_capture_log(_capture_dir(workspace) / "record.jsonl")
    assert read.clean
    metrics = [line for line in read.lines if line["payload_type"] == "MetricRecord"]
    refs = Counter(line["payload_ref"] for line in metrics)
    assert len(refs) == 4 * 40_000 and set(refs.values()) == {1}
    for rank in range(4):  # each rank's lines in the order it captured them
        steps = [
            line["payload"]["payload"]["step"]
            for line in metrics
            if line["payload"]["envelope"]["run_ref"] == f"run:ddp.rank-{rank}"
        ]
        assert steps == list(range(40_000))
    assert len([s for s in log_segments(_capture_dir(workspace), "RECORD") if not s.active]) > 20


@pytest.mark.sqlite_only("repair rebuilds the SQLite file from the capture log")
def test_repair_from_compressed_segments_rebuilds_the_same_store(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    config = {"project_name": "p", "capture": SMALL_SEGMENTS}
    with Contexta(workspace=workspace, config=config) as ctx:
        _train(ctx, "first", 1_500)
        _train(ctx, "second", 1_500)
        before = {
            run.run_id: [(p.step, p.value) for p in ctx.get_metric_series(run.run_id, "loss").points]
            for run in ctx.list_runs()
        }
    assert all(s.compressed for s in log_segments(_capture_dir(workspace), "RECORD") if not s.active)

    with Contexta(workspace=workspace, config=config) as ctx:
        report = ctx.repair()
        after = {
            run.run_id: [(p.step, p.value) for p in ctx.get_metric_series(run.run_id, "loss").points]
            for run in ctx.list_runs()
        }
    assert report.records >= 3_000 and not report.skipped_lines
    assert after == before and len(after["run:p.first"]) == 1_500


def test_a_plain_segment_left_beside_its_compressed_copy_is_read_once(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with Contexta(workspace=workspace, config={"project_name": "p", "capture": SMALL_SEGMENTS}) as ctx:
        losses = _train(ctx, "fit", 1_000)
    capture_dir = _capture_dir(workspace)
    first = log_segments(capture_dir, "RECORD")[0]
    # A compression killed after its rename and before removing the plain file leaves both.
    with open(first.path, "rb") as compressed:
        import zstandard

        plain = zstandard.ZstdDecompressor().stream_reader(compressed).read()
    first.path.with_name(first.path.name.removesuffix(".zst")).write_bytes(plain)

    assert _losses(workspace) == losses
    compress_sealed_segments(capture_dir)  # the leftover goes, the compressed copy stays
    assert not list(capture_dir.glob("record.*.jsonl"))
    assert _losses(workspace) == losses


def test_a_damaged_compressed_segment_costs_only_its_unreadable_rest(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with Contexta(workspace=workspace, config={"project_name": "p", "capture": SMALL_SEGMENTS}) as ctx:
        losses = _train(ctx, "fit", 2_000)
    segments = log_segments(_capture_dir(workspace), "RECORD")
    damaged = segments[1].path
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])  # cut off by hand

    read = read_capture_log(_capture_dir(workspace) / "record.jsonl")
    assert len(read.skipped_lines) == 1
    kept = [
        line["payload"]["payload"]["value"]
        for line in read.lines
        if line["payload_type"] == "MetricRecord" and line["payload"]["payload"]["metric_key"] == "loss"
    ]
    assert 0 < len(kept) < len(losses)
    assert kept[-500:] == losses[-500:]  # the segments after the damaged one are all there
    assert all(value in set(losses) for value in kept)


def test_a_retried_replay_finds_its_lines_in_the_segment_they_were_sealed_into(tmp_path: Path) -> None:
    from contexta.capture import CaptureBatch

    directory = tmp_path / "capture"
    with Contexta(workspace=tmp_path / "source", config={"project_name": "p"}) as ctx:
        _train(ctx, "fit", 50)
    lines = read_capture_log(_capture_dir(tmp_path / "source") / "record.jsonl").lines
    from contexta.capture._log._entries import entries_from_lines

    batch = CaptureBatch(entries_from_lines(lines))

    class Note:
        def __init__(self) -> None:
            self.value: dict[str, Any] | None = None

        def read(self) -> dict[str, Any] | None:
            return self.value

        def write(self, value: dict[str, Any]) -> None:
            self.value = orjson.loads(orjson.dumps(value))

    note = Note()
    sink = LocalJsonlSink(directory, segment_bytes=0)
    sink.write_replayed(batch, note)  # appended; then "cut short" before the outbox let go
    sink.close()
    # The file is sealed and compressed before the retry (another process past its limit).
    active = directory / "record.jsonl"
    os.rename(active, directory / "record.000001.jsonl")
    compress_sealed_segments(directory)

    retry = LocalJsonlSink(directory, segment_bytes=0)
    retry.write_replayed(batch, note)
    retry.close()
    refs = Counter(line["payload_ref"] for line in read_capture_log(active).lines)
    assert len(refs) == len(lines) and set(refs.values()) == {1}


_TAIL_FOLLOW_JSON = (sys.executable, "-m", "contexta", "tail", "--follow", "--format", "json")
_TAIL_FOLLOW_JSON += ("--family", "record", "-n", "0")

_WRITER = textwrap.dedent(
    """
    import sys
    from contexta import Contexta

    workspace = sys.argv[1]
    config = {"project_name": "p", "capture": {"segment_bytes": 32 * 1024, "max_batch_size": 64}}
    with Contexta(workspace=workspace, config=config) as ctx, ctx.run("live") as run:
        with run.stage("train") as stage:
            for step in range(6_000):
                stage.metric("loss", 1.0 / (step + 1), step=step)
                if step % 200 == 0:
                    ctx.flush()
    """
)


def test_tail_follow_across_sealings_prints_every_line_once(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    Contexta(workspace=workspace, config={"project_name": "p"}).close()
    tail = subprocess.Popen(
        [*_TAIL_FOLLOW_JSON, "--workspace", str(workspace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: queue.Queue[str] = queue.Queue()
    assert tail.stdout is not None and tail.stderr is not None
    stdout = tail.stdout

    def read_printed() -> None:
        for line in stdout:
            seen.put(line)

    threading.Thread(target=read_printed, daemon=True).start()
    try:
        time.sleep(1.0)  # the follower is polling before the first line is written
        writer = subprocess.run(
            [sys.executable, "-c", _WRITER, str(workspace)], capture_output=True, timeout=300, check=False
        )
        assert writer.returncode == 0, writer.stderr.decode()
        logged = read_capture_log(_capture_dir(workspace) / "record.jsonl").lines
        assert len([s for s in log_segments(_capture_dir(workspace), "RECORD") if not s.active]) > 20
        printed: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(printed) < len(logged) and time.monotonic() < deadline:
            try:
                printed.append(orjson.loads(seen.get(timeout=1)))
            except queue.Empty:
                continue
        tail.send_signal(signal.SIGINT)
        assert tail.wait(timeout=15) == 0
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    while not seen.empty():
        printed.append(orjson.loads(seen.get()))
    assert [line["payload_ref"] for line in printed] == [line["payload_ref"] for line in logged]


def test_segment_limits_are_checked_when_configured(tmp_path: Path) -> None:
    from contexta.errors import ConfigurationError

    Contexta(workspace=tmp_path / "off", config={"capture": {"segment_bytes": 0, "segment_age_s": 0}}).close()
    with pytest.raises(ConfigurationError, match="segment_bytes"):
        Contexta(workspace=tmp_path / "bad", config={"capture": {"segment_bytes": -1}})
    with pytest.raises(ConfigurationError, match="segment_age_s"):
        Contexta(workspace=tmp_path / "bad", config={"capture": {"segment_age_s": "1h"}})


def test_a_compression_that_fails_keeps_the_segment_plain_readable_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contexta.capture._log import _segments
    from contexta.errors import CaptureWarning

    def disk_full(source: Any, target: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_segments, "_write_compressed", disk_full)
    workspace = tmp_path / "ws"
    config = {"project_name": "p", "capture": SMALL_SEGMENTS}
    with (
        pytest.warns(CaptureWarning, match="could not compress sealed capture-log segments"),
        Contexta(workspace=workspace, config=config) as ctx,
    ):
        losses = _train(ctx, "fit", 1_000)
    sealed = [s for s in log_segments(_capture_dir(workspace), "RECORD") if not s.active]
    assert sealed and not any(s.compressed for s in sealed)
    assert _losses(workspace) == losses

    monkeypatch.undo()  # space again: the leftovers are compressed by the next pass
    compress_sealed_segments(_capture_dir(workspace))
    assert all(s.compressed for s in log_segments(_capture_dir(workspace), "RECORD") if not s.active)
    assert _losses(workspace) == losses


def test_the_age_limit_counts_from_the_first_line_to_the_fraction_of_a_second(tmp_path: Path) -> None:
    """A first line captured at .9 s is a tenth of a second old a tenth later, not a whole second: a
    file is sealed once its limit has passed, never up to a second early."""
    while time.time() % 1.0 >= 0.3:  # early in a second, so the first line is at .9 of the last one
        time.sleep(0.05)
    captured = time.gmtime(int(time.time()) - 1)
    first = f'{{"captured_at":"{time.strftime("%Y-%m-%dT%H:%M:%S", captured)}.900000Z","family":"RECORD"}}\n'
    log = FollowedLog(str(tmp_path / "record.jsonl"), limits=SegmentLimits(max_age_s=1.0))
    try:
        log.append(first.encode(), False)  # 0.1-0.4 s old: counted to the second it would be 1.1-1.4
        assert log.sealed == 0 and (tmp_path / "record.jsonl").exists()
    finally:
        log.close()
