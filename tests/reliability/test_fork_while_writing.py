"""A child forked while its parent writes to the store (a DataLoader worker started while the parent
still captures) flushes what it captured into the log and the store, and never waits minutes on a
lock nobody will release.

Each case runs in a process of its own: the parent captures (or holds a store transaction open in
another thread, to fork at a known moment), forks, and reports what its children saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture import read_capture_log

CHILDREN = 24
SAMPLES = 5

_BUSY_PARENT = textwrap.dedent(
    """
    import json, multiprocessing, os, random, sys, threading, time
    from contexta import Contexta

    workspace, method, children, samples = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ctx = Contexta(workspace=workspace, config={"project_name": "loader"})

    def child(number, stage):
        for index in range(samples):
            with stage.sample(f"child-{number}-{index}") as sample:
                sample.metric("x", float(index))
        ctx.flush(timeout=20)  # raises flush_timeout when the store lane is stuck

    def forked(number, stage):
        try:
            child(number, stage)
        except BaseException as error:
            print(f"child {number}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            os._exit(3)
        os._exit(0)

    stop = threading.Event()
    codes = []
    with ctx.run("busy-parent") as run, run.stage("load") as stage:
        def capture():
            step = 0
            while not stop.is_set():  # the parent's writer commits batch after batch meanwhile
                stage.metric("parent.loss", 1.0, step=step)
                step += 1
        capturer = threading.Thread(target=capture)
        capturer.start()
        if method == "os.fork":
            pids = []
            for number in range(children):
                time.sleep(random.uniform(0.0, 0.03))
                pid = os.fork()
                if pid == 0:
                    forked(number, stage)
                pids.append(pid)
            codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
        else:
            context = multiprocessing.get_context("fork")
            processes = []
            for number in range(children):
                time.sleep(random.uniform(0.0, 0.03))
                process = context.Process(target=child, args=(number, stage))
                process.start()
                processes.append(process)
            for process in processes:
                process.join()
            codes = [process.exitcode for process in processes]
        stop.set()
        capturer.join()
    ctx.close()
    print(json.dumps(codes))
    """
)


def _samples_in_log(workspace: Path) -> set[str]:
    read = read_capture_log(workspace / "cache" / "capture" / "context.jsonl")
    assert read.clean, read.skipped_lines[:5]
    return {
        line["payload"]["sample_name"] for line in read.lines if line["payload_type"] == "SampleObservation"
    }


def _samples_in_store(workspace: Path, project: str, run: str) -> set[str]:
    with Contexta(workspace=workspace, config={"project_name": project}) as ctx:
        return {sample.name for sample in ctx.list_samples(run)}


@pytest.mark.parametrize("method", ["os.fork", "multiprocessing"])
def test_children_forked_at_random_moments_of_a_busy_parent_land_in_the_log_and_the_store(
    tmp_path: Path, method: str
) -> None:
    # Breaks without the fork gate: about one child in ten is forked while the parent's store lane
    # is inside a commit, and its own store lane then retries BEGIN IMMEDIATE for ten minutes.
    workspace = tmp_path / ".contexta"
    done = subprocess.run(
        [sys.executable, "-c", _BUSY_PARENT, str(workspace), method, str(CHILDREN), str(SAMPLES)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [0] * CHILDREN, done.stderr
    expected = {f"child-{number}-{index}" for number in range(CHILDREN) for index in range(SAMPLES)}
    assert _samples_in_log(workspace) == expected
    assert _samples_in_store(workspace, "loader", "busy-parent") == expected


# The parent forks while another of its threads is inside a store transaction: deterministic, where
# the busy parent above is a matter of chance. `hold` keeps the transaction open for 0.5 s (`brief`)
# or until the fork has returned in the parent (`until-forked`, with the fork's wait cut to 0.3 s).
_FORK_IN_A_TRANSACTION = textwrap.dedent(
    """
    import json, os, sys, threading, time, warnings
    from pathlib import Path
    from contexta import Contexta
    from contexta.store import StoreDatabase
    import contexta.store._fork_guard as fork_guard

    workspace, hold = Path(sys.argv[1]), sys.argv[2]
    if hold == "until-forked":
        fork_guard.FORK_WAIT_S = 0.3
    ctx = Contexta(workspace=workspace, config={"project_name": "loader"})
    entered, forked = threading.Event(), threading.Event()

    def write_by_hand():
        database = StoreDatabase(workspace / "metadata" / "contexta.db")
        with database.transaction() as connection:
            connection.execute(
                "INSERT INTO delivered_batches (batch_id, delivered_at) VALUES ('by-hand', 'now')"
            )
            entered.set()
            if hold == "brief":
                time.sleep(0.5)
            else:
                forked.wait()
        database.close_all()

    with ctx.run("parent") as run, run.stage("load") as stage:
        writer = threading.Thread(target=write_by_hand)
        writer.start()
        entered.wait()
        pid = os.fork()
        if pid == 0:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for index in range(3):
                    with stage.sample(f"child-{index}") as sample:
                        sample.metric("x", float(index))
                try:
                    report = ctx.flush(timeout=30)
                except Exception as error:
                    print(json.dumps({"flush": f"{type(error).__name__}: {error}"}), flush=True)
                    os._exit(3)
                print(json.dumps({
                    "errors": list(report.errors),
                    "outboxed": ctx.capture_stats().outboxed,
                    "warnings": [str(warning.message) for warning in caught],
                }), flush=True)
            os._exit(0)
        forked.set()
        child_code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        writer.join()
    replayed = ctx.replay_outbox()
    ctx.close()
    print(json.dumps({"child_code": child_code, "replayed_records": replayed.delivered_records}))
    """
)


def _fork_in_a_transaction(workspace: Path, hold: str) -> tuple[dict[str, Any], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", _FORK_IN_A_TRANSACTION, str(workspace), hold],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    child, parent = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    return child, parent


def test_a_child_forked_inside_a_parents_transaction_flushes_into_the_store(tmp_path: Path) -> None:
    # Breaks without the fork gate: the child inherits SQLite's in-process record of the parent's
    # write lock, which no thread of the child will ever release, and its flush times out.
    workspace = tmp_path / ".contexta"

    child, parent = _fork_in_a_transaction(workspace, "brief")

    assert child == {"errors": [], "outboxed": 0, "warnings": []}
    assert parent == {"child_code": 0, "replayed_records": 0}
    expected = {"child-0", "child-1", "child-2"}
    assert _samples_in_log(workspace) == expected
    assert _samples_in_store(workspace, "loader", "parent") == expected


@pytest.mark.sqlite_only("counts the batches left parked; a PostgreSQL store's lane delivers them itself")
def test_a_fork_that_could_not_wait_is_refused_at_once_and_replayed_later(tmp_path: Path) -> None:
    # The parent's transaction outlasts the fork's wait: the child cannot write the store safely.
    # Breaks if its store lane retried for minutes (flush times out) instead of refusing at once
    # with a reason; what it refused is parked and the parent's replay delivers it.
    workspace = tmp_path / ".contexta"

    child, parent = _fork_in_a_transaction(workspace, "until-forked")

    assert "flush" not in child, child
    assert child["outboxed"] == 9  # three samples opened and closed, three metrics
    [error] = child["errors"]
    assert "store_locked_by_fork" in error and "it was forked while a thread of its parent" in error
    assert "parked" in error
    assert any("store_locked_by_fork" in warning for warning in child["warnings"])
    assert parent == {"child_code": 0, "replayed_records": 9}
    expected = {"child-0", "child-1", "child-2"}
    assert _samples_in_log(workspace) == expected
    assert _samples_in_store(workspace, "loader", "parent") == expected
