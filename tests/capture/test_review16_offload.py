"""Review of issue 16: the capture log's three routes (sent ahead, queued behind, handed over while the
lane held the lock) keep every line, in order, however the writer and the lane interleave.

The writer thread hands batches over (`send_ahead`) while the lane writes them (`write`), as the
pipeline does, with batches below `LOG_PROCESS_MIN_BATCH` first and between big ones, and, in some
rounds, the log-writer process killed mid-way (then a batch it appended just before dying may appear
twice, never out of order and never missing). No timing is asserted: only what the log holds.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import threading
import time
import warnings
from pathlib import Path

import pytest
from tests.capture.test_caller_stalls import _five_batches, _metric_batch, _steps

from contexta.capture import CaptureBatch, LocalJsonlSink
from contexta.capture._log._builder import EntryBuilder
from contexta.capture._sinks._jsonl import LOG_PROCESS_MIN_BATCH


def _refuse_the_next_disk_check(log: LocalJsonlSink) -> None:
    """The sink's next low-disk check raises, as its CaptureWarning does under -W error."""
    check = log.disk_space.check

    def refusing() -> None:
        log.disk_space.check = check  # type: ignore[method-assign]
        raise OSError(28, "No space left on device")

    log.disk_space.check = refusing  # type: ignore[method-assign]


@pytest.mark.parametrize(("seed", "kill_after"), [(0, None), (1, None), (2, 3), (3, 9)])
def test_lines_keep_their_order_across_every_route(tmp_path: Path, seed: int, kill_after: int | None) -> None:
    chooser = random.Random(seed)
    log = LocalJsonlSink(tmp_path / "capture")
    builder = EntryBuilder()
    small, big = LOG_PROCESS_MIN_BATCH - 1, LOG_PROCESS_MIN_BATCH
    sizes = [5, small, *(chooser.choice([5, 100, small, big, 3000, 9000]) for _ in range(30))]
    batches, first = [], 0
    for size in sizes:
        batches.append(_metric_batch(builder, range(first, first + size)))
        first += size
    handed: queue.Queue[CaptureBatch | None] = queue.Queue()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for batch in batches:
                log.send_ahead(batch)
                handed.put(batch)
                if chooser.random() < 0.3:
                    time.sleep(0.001)  # lets the lane take the lock at varied moments
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            handed.put(None)

    def lane() -> None:
        try:
            written = 0
            while (batch := handed.get()) is not None:
                log.write(batch)
                written += 1
                process = log._offload._process
                if written == kill_after and process is not None:
                    os.kill(process.child_pid, signal.SIGKILL)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer), threading.Thread(target=lane)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CaptureWarning of a killed child
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        offload = log._offload
        left = (list(offload._ahead), list(offload._behind), list(offload._arrivals))
        log.close()
    assert not errors and not any(thread.is_alive() for thread in threads)
    assert left == ([], [], [])
    steps = _steps(log)
    if kill_after is None:
        assert steps == list(range(first))
    else:
        in_order: list[int] = []
        for step in steps:  # a repeat (from a batch the child appended before dying) is skipped
            if not in_order or step > in_order[-1]:
                in_order.append(step)
        assert in_order == list(range(first))  # each line at least once, none ahead of an earlier one
        seen: dict[int, int] = {}
        for step in steps:
            seen[step] = seen.get(step, 0) + 1
        assert max(seen.values()) <= 2  # appended by the child, then once more here


def test_a_batch_the_capture_log_refused_early_is_not_appended_later(tmp_path: Path) -> None:
    """A capture-log write that failed before the log-writer process's share was settled (here the
    low-disk check raising, as its CaptureWarning does under -W error) left the batch queued for the
    child while the lane parked it; a later top-up sent it anyway, out of order, and later batches
    appeared twice. Now the refused batch is taken back from the offload (the outbox's copy is the
    lane's to replay) and every later batch is in the log once, in order."""
    log, batches = _five_batches(tmp_path)
    offload = log._offload
    try:
        log.send_ahead(batches[0])
        log.write(batches[0])  # starts the child and writes the first batch
        process = offload._process
        assert process is not None
        with offload._lock:  # the lane, sending: the next batch is handed over meanwhile
            log.send_ahead(batches[1])
        _refuse_the_next_disk_check(log)
        with pytest.raises(OSError):
            log.write(batches[1])  # refused: the lane parks it in the outbox
        for batch in batches[2:]:
            log.send_ahead(batch)
            log.write(batch)
    finally:
        log.close()
    assert _steps(log) == [*range(0, 3000), *range(6000, 15_000)]


def test_a_refused_batch_already_sent_to_the_log_process_keeps_the_answers_in_step(tmp_path: Path) -> None:
    """The batch was already with the child when the low-disk check raised: the child appends it
    whatever happens, so its answer is read then, and every later batch's answer stays its own (an
    unread answer used to be taken for the next batch's, and the offload stopped using the child)."""
    log, batches = _five_batches(tmp_path)
    offload = log._offload
    try:
        log.send_ahead(batches[0])
        log.write(batches[0])  # starts the child and writes the first batch
        log.send_ahead(batches[1])
        assert list(offload._ahead) == [batches[1]]  # with the child
        _refuse_the_next_disk_check(log)
        with pytest.raises(OSError):
            log.write(batches[1])
        assert not offload._ahead
        for batch in batches[2:]:
            log.send_ahead(batch)
            log.write(batch)
        assert offload._process is not None and not offload.gone  # still using the child
        assert not offload._ahead and not offload._behind and not offload._arrivals
    finally:
        log.close()
    assert _steps(log) == list(range(15_000))
