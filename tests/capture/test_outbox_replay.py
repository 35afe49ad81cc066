"""Replaying the outbox exactly once, whatever cuts a replay short, and whoever else replays.

The batches are parked for real: a child process captures past a file-size limit (RLIMIT_FSIZE), so
both the capture log and the store refuse batches and the outbox keeps them. Replays then run in
child processes too, interrupted by a real SIGINT (Ctrl-C) or killed by SIGKILL at chosen moments:
right after the capture log appended a batch, or right after the store committed one, before the
outbox let go of it. Exactly once means: every step is in the log once and in the store once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from contexta import Contexta
from contexta.capture import read_capture_log

_STEPS = 3500

_PARK = textwrap.dedent(
    """
    import os, resource, signal, sys, warnings
    from contexta import Contexta

    warnings.simplefilter("ignore")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG
    workspace = sys.argv[1]
    ctx = Contexta(workspace=workspace, config={"project_name": "p", "capture": {"max_batch_size": 16}})
    log = os.path.join(workspace, "cache", "capture", "record.jsonl")
    with ctx.run("r") as run:
        for step in range(1000):
            run.metric("loss", float(step), step=step)
        ctx.flush()
        limit = os.path.getsize(log) + 64 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        for step in range(1000, 3000):
            run.metric("loss", float(step), step=step)
        ctx.flush()
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        for step in range(3000, 3500):
            run.metric("loss", float(step), step=step)
    ctx.close()
    """
)

# A replay, cut short (`how`: sigint or sigkill) right after the `at`-th append of a replayed batch to
# the capture log (`where` = log) or commit of one to the store (`where` = store), or held there until
# a file appears (`how` = hold). `mode` plain: just replay.
_REPLAY = textwrap.dedent(
    """
    import json, os, signal, sys, threading, time, warnings
    from contexta import Contexta
    from contexta.capture import LocalJsonlSink
    from contexta.capture import StoreSink

    warnings.simplefilter("ignore")
    workspace, how, where, at, signals = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    calls = 0

    def cut_short():
        global calls
        if threading.current_thread() is not threading.main_thread():
            return  # live capture, not the replay
        calls += 1
        if calls != at:
            return
        if how == "sigint":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: KeyboardInterrupt at the next bytecode
        elif how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif how == "hold":
            open(os.path.join(signals, "holding"), "w").close()
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(signals, "release")) and time.monotonic() < deadline:
                time.sleep(0.01)

    if where == "log":
        append = LocalJsonlSink._append
        def appended_then_cut(self, family, data):
            append(self, family, data)
            cut_short()
        LocalJsonlSink._append = appended_then_cut
    elif where == "store":
        write = StoreSink.write
        def committed_then_cut(self, batch):
            write(self, batch)
            cut_short()
        StoreSink.write = committed_then_cut

    ctx = Contexta(workspace=workspace, config={"project_name": "p"})
    deadline = time.monotonic() + 60
    go = os.path.join(signals, "go")
    while how == "together" and not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.005)
    result = {"interrupted": False}
    try:
        report = ctx.replay_outbox()
        result.update(delivered=report.delivered_batches, remaining=report.remaining_batches,
                      errors=list(report.errors))
    except KeyboardInterrupt:
        result["interrupted"] = True
        if how == "sigint" and sys.argv[6:] == ["again"]:  # the same process replays again
            report = ctx.replay_outbox()
            result.update(delivered=report.delivered_batches, remaining=report.remaining_batches,
                          errors=list(report.errors))
    ctx.close()
    print(json.dumps(result))
    """
)


def _park(workspace: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PARK, str(workspace)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    parked = sorted((workspace / "cache" / "outbox").glob("*/*.jsonl"))
    folders = {path.parent.name for path in parked}
    assert folders == {"local-jsonl", "canonical-store"}, folders  # both sinks refused batches
    return len(parked)


def _replay_command(
    workspace: Path, how: str = "plain", where: str = "none", at: int = 0, *extra: str
) -> list[str]:
    signals = workspace.parent / "signals"
    signals.mkdir(exist_ok=True)
    return [sys.executable, "-c", _REPLAY, str(workspace), how, where, str(at), str(signals), *extra]


def _replay(
    workspace: Path, how: str = "plain", where: str = "none", at: int = 0, *extra: str
) -> dict[str, Any]:
    done = subprocess.run(
        _replay_command(workspace, how, where, at, *extra),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if how == "sigkill":
        assert done.returncode == -signal.SIGKILL, done.stderr
        return {}
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _assert_every_step_once(workspace: Path) -> None:
    log = read_capture_log(workspace / "cache" / "capture" / "record.jsonl")
    assert log.clean, f"unreadable lines {log.skipped_lines}"
    logged = [
        line["payload"]["payload"]["step"] for line in log.lines if line["payload_type"] == "MetricRecord"
    ]
    assert len(logged) == len(set(logged)), "a replayed batch was appended to the log twice"
    assert sorted(logged) == list(range(_STEPS)), "a parked batch never reached the log"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        stored = [step for step in ctx.get_metric_series("r", "loss").steps if step is not None]
    assert len(stored) == len(set(stored)), "a replayed batch was stored twice"
    assert sorted(stored) == list(range(_STEPS)), "a parked batch never reached the store"
    assert sorted((workspace / "cache" / "outbox").glob("*/*")) == []  # nothing parked, nothing left


def test_ctrl_c_right_after_the_log_appended_then_the_next_replay_delivers_exactly_once(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / ".contexta"
    _park(workspace)
    assert _replay(workspace, "sigint", "log", 3)["interrupted"]
    final = _replay(workspace)
    assert final["remaining"] == 0 and final["errors"] == []
    _assert_every_step_once(workspace)


def test_ctrl_c_right_after_the_store_committed_then_the_next_replay_delivers_exactly_once(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / ".contexta"
    _park(workspace)
    assert _replay(workspace, "sigint", "store", 3)["interrupted"]
    final = _replay(workspace)
    assert final["remaining"] == 0 and final["errors"] == []
    _assert_every_step_once(workspace)


def test_after_ctrl_c_the_same_process_replays_the_rest_exactly_once(tmp_path: Path) -> None:
    # A notebook: Ctrl-C stops a replay, and the next cell replays again in the same process.
    workspace = tmp_path / ".contexta"
    _park(workspace)
    result = _replay(workspace, "sigint", "log", 5, "again")
    assert result["interrupted"] and result["remaining"] == 0 and result["errors"] == []
    _assert_every_step_once(workspace)


def test_a_replay_killed_after_appending_is_finished_by_the_next_one_exactly_once(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    _park(workspace)
    _replay(workspace, "sigkill", "log", 2)
    _replay(workspace, "sigkill", "store", 4)
    final = _replay(workspace)
    assert final["remaining"] == 0 and final["errors"] == []
    _assert_every_step_once(workspace)


def _parked_count(workspace: Path) -> int:
    return len(list((workspace / "cache" / "outbox").glob("*/*.jsonl")))


def test_contexta_replay_interrupted_by_ctrl_c_at_random_moments_delivers_exactly_once(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / ".contexta"
    _park(workspace)
    chance = random.Random(14)
    command = [sys.executable, "-m", "contexta", "replay", "--workspace", str(workspace)]
    for _ in range(6):
        before = _parked_count(workspace)
        replay = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while _parked_count(workspace) >= before and replay.poll() is None:
            time.sleep(0.001)  # until it has started delivering
        time.sleep(chance.uniform(0.0, 0.05))  # then Ctrl-C somewhere in the middle
        replay.send_signal(signal.SIGINT)
        replay.communicate(timeout=120)
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr  # 0: nothing is still parked
    _assert_every_step_once(workspace)


def test_two_replays_at_once_deliver_each_batch_once(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    parked = _park(workspace)
    signals = tmp_path / "signals"
    replays = [
        subprocess.Popen(
            _replay_command(workspace, "together"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    time.sleep(0.1)
    (signals / "go").touch()
    results = []
    for replay in replays:
        out, err = replay.communicate(timeout=180)
        assert replay.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(result["delivered"] for result in results) == parked
    _assert_every_step_once(workspace)


def test_a_batch_another_live_process_is_delivering_is_left_to_it(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    _park(workspace)
    signals = tmp_path / "signals"
    holder = subprocess.Popen(
        _replay_command(workspace, "hold", "log", 1),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (signals / "holding").exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        other = _replay(workspace)  # runs to the end while the holder is mid-delivery
        assert other["remaining"] == 1 and other["errors"] == []  # the held batch: still the holder's
    finally:
        (signals / "release").touch()
        _, err = holder.communicate(timeout=180)
    assert holder.returncode == 0, err
    _assert_every_step_once(workspace)


def test_a_batch_claimed_by_an_earlier_contexta_whose_process_is_gone_is_delivered(tmp_path: Path) -> None:
    # An earlier Contexta claimed a file by renaming it to `<name>.claimed-<pid>`; interrupted, it
    # left the file so, and no replay ever delivered it.
    workspace = tmp_path / ".contexta"
    _park(workspace)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    first = sorted((workspace / "cache" / "outbox" / "canonical-store").glob("*.jsonl"))[0]
    os.rename(first, first.with_suffix(f".claimed-{int(gone.stdout)}"))
    final = _replay(workspace)
    assert final["remaining"] == 0
    _assert_every_step_once(workspace)
