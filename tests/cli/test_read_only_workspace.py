"""The read commands on a workspace this process may not write: a read-only mount, a user without
write permission, a store file of mode 0444. They print what they print anywhere else, write nothing
(the store's bytes and times and every directory listing stay as they were), and an error about
access says so, never "run `contexta repair`" on an intact store.

Permission bits do not stop root, so these run the commands in a child process as an unprivileged
user (`setpriv`, uid 65534) or inside a mount namespace where the workspace is bind-mounted
read-only (`unshare --mount`); each is skipped, with the reason, where it is not available. A writer
that keeps the store open (so its `-wal` and `-shm` exist, holding commits not yet in the file) is
a real process capturing into it.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta, Workspace
from contexta.cli import main
from contexta.errors import NotFoundError, StoreError
from contexta.store._schema import APPLICATION_ID, MIGRATIONS

NOBODY = 65534
READ_COMMANDS: list[tuple[list[str], str]] = [
    (["runs"], "tuned"),
    (["run", "show", "baseline"], "Run run:p.baseline"),
    (["compare", "baseline", "tuned"], "accuracy"),
    (["best", "accuracy", "--stage", "evaluate"], "run:p.tuned"),
    (["diagnose", "baseline"], "No issues in run:p.baseline."),
    (["report", "baseline", "--format", "md"], "# Run Snapshot: run:p.baseline"),
    (["verify"], "verified"),
    (["tail"], "accuracy=0.9"),
]

# Runs the commands in one process and prints, per command, its exit code and what it printed.
_COMMANDS = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from contexta.cli import main

    workspace, commands = sys.argv[1], json.loads(sys.argv[2])
    results = []
    for argv in commands:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*argv, "--workspace", workspace])
        results.append([code, out.getvalue(), err.getvalue()])
    print(json.dumps(results))
    """
)

# Keeps a Contexta open on the workspace after capturing one more run, so the store's `-wal` and
# `-shm` exist and hold that run; waits until its stdin is closed.
_WRITER = textwrap.dedent(
    """
    import sys
    from contexta import Contexta

    ctx = Contexta(workspace=sys.argv[1], config={"project_name": "p"})
    with ctx.run("in-the-log") as run, run.stage("evaluate") as stage:
        stage.metric("accuracy", 0.85)
    print("ready", flush=True)
    sys.stdin.read()
    ctx.close()
    """
)


# -- environments ---------------------------------------------------------------------------------


def _unprivileged_prefix() -> list[str]:
    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import contexta"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"uid {NOBODY} cannot run this interpreter: {probe.stderr.strip()[-200:]}")
    return prefix


def _read_only_mount_prefix(directory: Path) -> list[str]:
    """Run the command in a mount namespace where `directory` is a read-only bind mount of itself."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a read-only bind mount needs root and unshare (util-linux)")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    prefix = ["unshare", "--mount", "sh", "-c", script, str(directory)]
    probe = subprocess.run(
        [*prefix, "sh", "-c", f'! touch "{directory}/probe" 2>/dev/null'],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {probe.stderr.strip()[-200:]}")
    return prefix


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's own tmp_path is mode 0700, closed to others)."""
    path = Path(tempfile.mkdtemp(prefix="contexta-read-only-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _capture(root: Path) -> Path:
    """Two runs with metrics and an artifact, closed: the store's `-wal` and `-shm` are gone."""
    workspace = root / ".contexta"
    model = root / "model.pkl"
    model.write_bytes(b"weights")
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        for name, accuracy in (("baseline", 0.8), ("tuned", 0.9)):
            with ctx.run(name) as run:
                with run.stage("train") as stage:
                    for step in range(3):
                        stage.metric("train/loss", 1.0 / (step + 1), step=step)
                with run.stage("evaluate") as stage:
                    stage.metric("accuracy", accuracy)
                run.register_artifact("model", model)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return workspace


def _state(workspace: Path) -> dict[str, object]:
    """Every path under the workspace with its size and modification time, and the store's digest."""
    state: dict[str, object] = {
        str(path.relative_to(workspace)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in [workspace, *workspace.rglob("*")]
    }
    state["store digest"] = hashlib.sha256((workspace / "metadata" / "contexta.db").read_bytes()).hexdigest()
    return state


def _run_commands(
    workspace: Path, prefix: list[str], commands: list[list[str]]
) -> list[tuple[int, str, str]]:
    done = subprocess.run(
        [*prefix, sys.executable, "-c", _COMMANDS, str(workspace), json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [tuple(result) for result in json.loads(done.stdout)]


def _assert_every_read_command_answers(
    workspace: Path, prefix: list[str], *, also_listed: str | None = None
) -> None:
    before = _state(workspace)
    results = _run_commands(workspace, prefix, [argv for argv, _ in READ_COMMANDS])
    for (argv, expected), (code, out, err) in zip(READ_COMMANDS, results, strict=True):
        assert (code, err) == (0, ""), (argv, out, err)
        assert expected in out, (argv, out)
    if also_listed is not None:
        assert also_listed in results[0][1]
    assert _state(workspace) == before  # nothing written: not the store, not beside it


# -- the cases ------------------------------------------------------------------------------------


def test_read_commands_work_for_a_user_who_may_not_write(public_dir: Path) -> None:
    # Breaks without the read-only open: every command said the store "is not a usable Contexta
    # store ... run `contexta repair`".
    prefix = _unprivileged_prefix()
    workspace = _capture(public_dir)

    _assert_every_read_command_answers(workspace, prefix)


def test_read_commands_on_a_read_only_mount(public_dir: Path) -> None:
    workspace = _capture(public_dir)
    prefix = _read_only_mount_prefix(public_dir)

    _assert_every_read_command_answers(workspace, prefix)


@pytest.mark.parametrize("reader", ["unprivileged user", "read-only mount"])
def test_read_commands_see_what_a_live_writer_committed_to_its_log(public_dir: Path, reader: str) -> None:
    # The store is open in a writer process: `-wal` and `-shm` exist, owned by the writer, and hold a
    # run the store file does not have yet. The reader must read them (without writing them).
    workspace = _capture(public_dir)
    prefix = _unprivileged_prefix() if reader == "unprivileged user" else _read_only_mount_prefix(public_dir)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(workspace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        store = workspace / "metadata" / "contexta.db"
        assert Path(f"{store}-wal").stat().st_size > 0 and Path(f"{store}-shm").exists()
        for path in Path(f"{store}-wal"), Path(f"{store}-shm"):
            path.chmod(0o644)

        _assert_every_read_command_answers(workspace, prefix, also_listed="in-the-log")
    finally:
        writer.communicate("", timeout=60)


def test_a_store_file_of_mode_0444_gets_nothing_created_beside_it(public_dir: Path) -> None:
    # The user owns the directory (SQLite could create `-wal` and `-shm` there, left behind owned by
    # the reader) but not the store file. Breaks if a read command opened it `mode=ro` alone.
    prefix = _unprivileged_prefix()
    workspace = _capture(public_dir)
    metadata = workspace / "metadata"
    os.chown(metadata, NOBODY, NOBODY)
    (metadata / "contexta.db").chmod(0o444)

    _assert_every_read_command_answers(workspace, prefix)
    assert sorted(path.name for path in metadata.iterdir()) == ["contexta.db"]


def test_an_unreadable_store_says_permission_and_never_repair(public_dir: Path) -> None:
    prefix = _unprivileged_prefix()
    workspace = _capture(public_dir)
    (workspace / "metadata" / "contexta.db").chmod(0o600)
    before = _state(workspace)

    [(code, out, err)] = _run_commands(workspace, prefix, [["runs"]])

    assert (code, out) == (1, "")
    assert "cannot read" in err and "not readable by this user" in err and "check permissions" in err
    assert "repair" not in err
    assert _state(workspace) == before


def test_an_old_store_on_a_read_only_mount_says_it_needs_a_writable_open(public_dir: Path) -> None:
    # A store of the previous schema: today's queries cannot read it, and migrating writes.
    workspace = public_dir / ".contexta"
    store = workspace / "metadata" / "contexta.db"
    store.parent.mkdir(parents=True)
    connection = sqlite3.connect(store, isolation_level=None)
    for statement in MIGRATIONS[1]:
        connection.execute(statement)
    connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
    connection.execute("PRAGMA user_version=1")
    connection.close()
    prefix = _read_only_mount_prefix(public_dir)
    before = _state(workspace)

    [(code, out, err)] = _run_commands(workspace, prefix, [["runs"]])

    assert (code, out) == (1, "")
    assert "store schema 1, older than" in err and "with write access" in err and "migrate" in err
    assert "repair" not in err
    assert _state(workspace) == before


_CAPTURE_ATTEMPT = textwrap.dedent(
    """
    import json, sys
    from contexta import Contexta
    from contexta.errors import ContextaError

    try:
        Contexta(workspace=sys.argv[1], config={"project_name": "p"})
    except ContextaError as error:
        print(json.dumps([error.code, error.message]))
    """
)


@pytest.mark.parametrize("where", ["unprivileged user", "read-only mount"])
def test_capturing_where_the_store_cannot_be_written_says_so_and_never_repair(
    public_dir: Path, where: str
) -> None:
    workspace = _capture(public_dir)
    prefix = _unprivileged_prefix() if where == "unprivileged user" else _read_only_mount_prefix(public_dir)

    done = subprocess.run(
        [*prefix, sys.executable, "-c", _CAPTURE_ATTEMPT, str(workspace)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    code, message = json.loads(done.stdout)
    assert code == "store_not_writable"
    assert message.startswith(f"cannot write to {workspace / 'metadata' / 'contexta.db'}: ")
    reason = "read-only file system" if where == "read-only mount" else "may not create files in"
    assert reason in message and "open it read-only" in message
    assert "repair" not in message


# -- the public read-only workspace, in this process -----------------------------------------------

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Watch:
    """What a read might start behind the caller's back: threads, exit hooks, signal handlers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[str] = []
        self.exit_hooks: list[object] = []
        start, register = threading.Thread.start, atexit.register

        def recording_start(thread: threading.Thread) -> None:
            self.started.append(thread.name)
            start(thread)

        def recording_register(function: Any, *args: Any, **kwargs: Any) -> Any:
            self.exit_hooks.append(function)
            return register(function, *args, **kwargs)

        monkeypatch.setattr(threading.Thread, "start", recording_start)
        monkeypatch.setattr(atexit, "register", recording_register)
        self.threads = threading.active_count()
        self.handlers = [signal.getsignal(signum) for signum in _SIGNALS]

    def assert_nothing_started(self) -> None:
        assert self.started == []
        assert self.exit_hooks == []
        assert threading.active_count() == self.threads
        assert [signal.getsignal(signum) for signum in _SIGNALS] == self.handlers


def _read_only_tree(workspace: Path) -> None:
    for path in [workspace, *workspace.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


def test_a_workspace_answers_every_question_without_a_thread_a_hook_or_a_write(
    public_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Breaks if reading builds a Contexta (a writer thread and two lane threads, exit and signal
    # hooks, a migration, runs marked interrupted) or writes anything beside the store.
    workspace = _capture(public_dir)
    _read_only_tree(workspace)
    before = _state(workspace)
    watch = _Watch(monkeypatch)

    with Workspace(workspace) as opened:
        runs = opened.list_runs()
        snapshot = opened.get_run_snapshot("tuned")
        comparison = opened.compare_runs("baseline", "tuned")
        diagnostics = opened.diagnose_run("baseline")
        series = opened.get_metric_series("baseline", "train/loss")
        report = opened.build_snapshot_report("tuned").to_markdown()
        (artifact,) = opened.list_artifacts("tuned")
        verification = opened.verify_artifact(artifact.artifact_ref)

    watch.assert_nothing_started()
    assert _state(workspace) == before
    assert [(run.name, run.status) for run in runs] == [("baseline", "completed"), ("tuned", "completed")]
    assert snapshot.run.name == "tuned"
    assert {delta.metric_key for delta in comparison.metric_deltas} >= {"accuracy"}
    assert diagnostics.issues == ()
    assert series.values == (1.0, 0.5, 1.0 / 3)
    assert report.startswith("# Run Snapshot: run:p.tuned")
    assert verification.status == "verified"


@pytest.mark.parametrize("argv", [argv for argv, _ in READ_COMMANDS], ids=" ".join)
def test_each_read_command_starts_no_thread_in_this_process(
    public_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    workspace = _capture(public_dir)
    _read_only_tree(workspace)
    before = _state(workspace)
    expected = dict((tuple(command), text) for command, text in READ_COMMANDS)[tuple(argv)]
    watch = _Watch(monkeypatch)

    code = main([*argv, "--workspace", str(workspace)])

    watch.assert_nothing_started()
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert expected in out
    assert _state(workspace) == before


def test_a_missing_workspace_is_not_found_and_nothing_is_created(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as raised:
        Workspace(tmp_path / "nowhere")
    assert raised.value.code == "workspace_not_found"
    assert "nowhere" in raised.value.message
    assert list(tmp_path.iterdir()) == []


def _schema_one_store(workspace: Path) -> Path:
    store = workspace / "metadata" / "contexta.db"
    store.parent.mkdir(parents=True)
    connection = sqlite3.connect(store, isolation_level=None)
    for statement in MIGRATIONS[1]:
        connection.execute(statement)
    connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
    connection.execute("PRAGMA user_version=1")
    connection.close()
    return store


def test_reading_never_migrates_and_contexta_migrate_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Breaks if opening to read migrated the store (a write the user did not ask for), or if the
    # error did not name the command that migrates it.
    workspace = tmp_path / ".contexta"
    store = _schema_one_store(workspace)
    before = hashlib.sha256(store.read_bytes()).hexdigest()

    with pytest.raises(StoreError) as raised:
        Workspace(workspace)
    assert raised.value.code == "store_needs_migration"
    assert "contexta migrate" in raised.value.message
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert main(["runs", "--workspace", str(workspace)]) == 1
    assert "contexta migrate" in capsys.readouterr().err

    assert main(["migrate", "--workspace", str(workspace)]) == 0
    assert "from store schema 1" in capsys.readouterr().out
    with Workspace(workspace) as opened:
        assert opened.list_runs() == []
    assert main(["migrate", "--workspace", str(workspace)]) == 0
    assert "already at this version's schema" in capsys.readouterr().out
