"""Parking a refused batch is all or nothing: a write the disk refuses leaves no partial file to hold
the space the next, smaller batches need, and a partial file whose writer died is swept by the next
park or replay, never one a live writer is still writing.

Each case runs in a child process with a real limit: RLIMIT_FSIZE, or a real full disk (a small
tmpfs mounted in a mount namespace of its own, where `unshare` allows it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.errors import CaptureWarning

# A sink that refuses every batch, so each one is parked; one `metrics()` call with many keys is one
# batch, so the sizes below are what each parked file holds.
_REFUSING_SINK = textwrap.dedent(
    """
    import json, os, resource, signal, sys, warnings
    from contexta import Contexta

    warnings.simplefilter("ignore")

    class Refusing:
        name = "refusing"
        def write(self, batch):
            raise OSError(5, "the downstream service is down (a test sink)")
        def flush(self):
            pass
        def close(self):
            pass

    def open_workspace(workspace):
        config = {"project_name": "p", "capture": {"persist": False}}
        return Contexta(workspace=workspace, config=config, sinks=[Refusing()])

    def parked_files(workspace):
        folder = os.path.join(workspace, "cache", "outbox", "refusing")
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    """
)

_PARK_UNDER_A_LIMIT = _REFUSING_SINK + textwrap.dedent(
    """
    workspace, how = sys.argv[1], sys.argv[2]
    if how == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG
    ctx = open_workspace(workspace)
    with ctx.run("r") as run:
        ctx.flush()
        if how == "fsize":  # no file may grow past 150 KB
            resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, resource.RLIM_INFINITY))
        else:  # a real full disk: fill it but for 150 KB
            folder = os.path.join(workspace, "cache", "outbox")
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            with open(os.path.join(folder, "filler"), "wb") as filler:
                filler.write(b"x" * (free - 150_000))
        # One batch of about 600 KB: more than the disk or the limit allows.
        run.metrics({f"key{i}": float(i) for i in range(1000)}, step=0)
        big = ctx.flush().stats.to_dict()
        # Then five batches of about 12 KB each: all of them fit in what is left.
        for batch in range(5):
            run.metrics({f"small{i}": float(i) for i in range(20)}, step=batch)
            ctx.flush()
        small = ctx.capture_stats().to_dict()
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    files = parked_files(workspace)
    ctx.close()
    print(json.dumps({"big": big, "small": small, "files": files}))
    """
)


def _park_under_a_limit(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr  # the program kept running through the refusals
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _assert_all_or_nothing(result: dict[str, Any]) -> None:
    big, small, files = result["big"], result["small"], result["files"]
    assert big["lost"] == 1000  # the big batch could not be kept, and says so
    assert [name for name in files if name.endswith(".partial")] == []  # nothing of it is left
    # ... so every later, smaller batch still found room: parked, none lost.
    assert small["lost"] == big["lost"] and small["outboxed"] - big["outboxed"] >= 5 * 20
    assert len([name for name in files if name.endswith(".jsonl")]) >= 5


def test_a_write_past_the_file_size_limit_leaves_no_partial_file(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    result = _park_under_a_limit([sys.executable, "-c", _PARK_UNDER_A_LIMIT, str(workspace), "fsize"])
    _assert_all_or_nothing(result)


def _mount_namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _mount_namespaces_work(),
    reason="needs `unshare --user --map-root-user --mount` to mount a small tmpfs",
)
def test_on_a_full_disk_a_refused_batch_frees_its_space_for_the_next_ones(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    outbox = workspace / "cache" / "outbox"
    outbox.mkdir(parents=True)
    script = tmp_path / "park.py"
    script.write_text(_PARK_UNDER_A_LIMIT)
    # The outbox on a 1 MiB tmpfs: without the clean-up, the big batch's partial file would keep the
    # disk full and every later batch would be lost.
    mount_and_run = 'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" "$3" "$4" disk'
    result = _park_under_a_limit(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            mount_and_run,
            "sh",
            str(outbox),
            sys.executable,
            str(script),
            str(workspace),
        ]
    )
    _assert_all_or_nothing(result)


# -- partial files of dead and of live writers ---------------------------------------------------

_PARK_AND_STOP_BEFORE_THE_RENAME = _REFUSING_SINK + textwrap.dedent(
    """
    import time
    workspace, how, signals = sys.argv[1], sys.argv[2], sys.argv[3]
    rename = os.replace

    def stop_before_the_rename(source, target, *args, **kwargs):
        if str(source).endswith(".partial"):
            if how == "die":  # killed mid-park: the partial file is written, never renamed
                os.kill(os.getpid(), signal.SIGKILL)
            open(os.path.join(signals, "writing"), "w").close()
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(signals, "go")) and time.monotonic() < deadline:
                time.sleep(0.01)
        return rename(source, target, *args, **kwargs)

    os.replace = stop_before_the_rename
    ctx = open_workspace(workspace)
    with ctx.run("r") as run:
        run.metrics({f"key{i}": float(i) for i in range(100)}, step=0)
        ctx.flush()
    ctx.close()
    """
)


def _partial_files(workspace: Path) -> list[Path]:
    return sorted((workspace / "cache" / "outbox" / "refusing").glob("*.partial"))


def _leave_a_dead_writers_partial_file(workspace: Path, signals: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PARK_AND_STOP_BEFORE_THE_RENAME, str(workspace), "die", str(signals)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    assert len(_partial_files(workspace)) == 1


class _Refusing:
    name = "refusing"

    def write(self, batch: Any) -> None:
        raise OSError(5, "still down")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_partial_file_whose_writer_died_is_removed_by_the_next_park(tmp_path: Path) -> None:
    workspace, signals = tmp_path / ".contexta", tmp_path / "signals"
    signals.mkdir()
    _leave_a_dead_writers_partial_file(workspace, signals)
    config = {"project_name": "p", "capture": {"persist": False}}
    with (
        pytest.warns(CaptureWarning, match="parked"),
        Contexta(workspace=workspace, config=config, sinks=[_Refusing()]) as ctx,
        ctx.run("again") as run,
    ):
        run.metric("loss", 1.0)
        ctx.flush()
    assert _partial_files(workspace) == []


def test_a_partial_file_whose_writer_died_is_removed_by_the_next_replay(tmp_path: Path) -> None:
    workspace, signals = tmp_path / ".contexta", tmp_path / "signals"
    signals.mkdir()
    _leave_a_dead_writers_partial_file(workspace, signals)
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        ctx.replay_outbox()
    assert _partial_files(workspace) == []


def test_a_live_writers_partial_file_is_never_swept(tmp_path: Path) -> None:
    workspace, signals = tmp_path / ".contexta", tmp_path / "signals"
    signals.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", _PARK_AND_STOP_BEFORE_THE_RENAME, str(workspace), "wait", str(signals)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (signals / "writing").exists():
            assert writer.poll() is None and time.monotonic() < deadline, writer.stderr
            time.sleep(0.01)
        [partial] = _partial_files(workspace)
        with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
            ctx.replay_outbox()  # sweeps the outbox, but must leave a live writer's file alone
        assert partial.exists()
    finally:
        (signals / "go").touch()
        _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert _partial_files(workspace) == []
    # The writer finished its park: the file it was writing is parked, whole.
    parked = partial.with_name(f"{partial.name[1 : -len('.partial')]}.jsonl")
    header, *lines = parked.read_bytes().splitlines()
    assert json.loads(header)["records"] == len(lines) > 0
